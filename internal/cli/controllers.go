package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"quartet.dev/quartet/internal/manager"
)

// inClusterNamespace is where a pod's service account names its namespace.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// newControllers is `quartet controllers`: quartet's workload controllers
// against any cluster.
func newControllers() *cobra.Command {
	var f controllersFlags
	c := &cobra.Command{
		Use:   "controllers (--kubeconfig FILE | --in-cluster)",
		Short: "Run quartet's StatefulSet, DaemonSet, Job, CronJob and TTL-after-finished controllers against any cluster (v1.33+)",
		Long:  controllersLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			o.Out = cmd.OutOrStdout()
			ctx, stop := signalContext()
			defer stop()
			return manager.Run(ctx, o)
		},
	}
	f.register(c.Flags())
	return c
}

const controllersLong = `quartet controllers runs quartet's workload controllers against an existing
Kubernetes cluster (v1.33 or newer), as a controller manager does: several
replicas elect a leader on a Lease and only the leader runs them; SIGTERM
stops the controllers and releases the Lease, so another replica takes over
at once.

At start it checks the apiserver's version and, with
SelfSubjectAccessReviews, every permission the chosen controllers need,
listing what is missing. Jobs: quartet's Job controller takes only the Jobs
whose spec.managedBy is ` + "`" + manager.JobManagedBy + "`" + ` (the cluster's own Job
controller leaves those alone). StatefulSets, DaemonSets and CronJobs have no
such field: the cluster's own controllers of those kinds must be off, and a
probe refuses to start while another one acts, unless
--upstream-controllers-disabled says they are off. With --take-over-jobs
(the cluster's own Job controller off), the Job controller takes the Jobs
without spec.managedBy instead, as the cluster's Job controller would, and
the probe checks for another Job controller too.

Guide: docs/controllers-anywhere.md.`

// controllersFlags are `quartet controllers`' flags: most go straight into
// manager.Options, the rest say how to reach the cluster.
type controllersFlags struct {
	o          manager.Options
	kubeconfig string
	inCluster  bool
	list       []string
	qps        float32
	burst      int
}

func (c *controllersFlags) register(f *pflag.FlagSet) {
	o := &c.o
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (its current context)")
	f.BoolVar(&c.inCluster, "in-cluster", false, "use the pod's service account (when running in the cluster)")
	f.StringSliceVar(&c.list, "controllers", []string{"*"}, "controllers to run: "+strings.Join(manager.Names(), ", ")+"; * for all, -NAME leaves one out")
	f.StringVar(&o.Namespace, "namespace", "", "namespace of the Lease and of the probe's objects (default: the pod's with --in-cluster, else quartet-system)")
	f.BoolVar(&o.LeaderElect, "leader-elect", true, "run the controllers only while this replica holds the Lease")
	f.StringVar(&o.LeaseName, "leader-elect-lease-name", "quartet-controllers", "name of the Lease")
	f.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long standby replicas wait before taking a Lease that is not renewed")
	f.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it stops")
	f.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often replicas try to take or renew the Lease")
	f.StringVar(&o.Identity, "leader-elect-identity", "", "this replica's name in the Lease (default: host name and a random suffix)")
	f.StringVar(&o.MetricsAddress, "metrics-address", ":8443", "address of the HTTPS /metrics endpoint (callers need a token allowed to get /metrics); empty turns it off")
	f.StringVar(&o.MetricsCertFile, "metrics-cert-file", "", "certificate of the metrics endpoint (default: a self-signed one)")
	f.StringVar(&o.MetricsKeyFile, "metrics-key-file", "", "key of --metrics-cert-file")
	f.StringVar(&o.HealthAddress, "health-address", ":8081", "address of the plain-HTTP /healthz and /readyz endpoints; empty turns it off")
	f.BoolVar(&o.UpstreamDisabled, "upstream-controllers-disabled", false,
		"confirm that the cluster's own StatefulSet, DaemonSet and CronJob controllers (and Job controller, with --take-over-jobs) are off, and skip the probe that refuses to start beside them")
	f.BoolVar(&o.TakeOverJobs, "take-over-jobs", false,
		"the cluster's own Job controller is off (kube-controller-manager --controllers=*,-job): take the Jobs without spec.managedBy, instead of only those naming "+manager.JobManagedBy)
	f.DurationVar(&o.ProbeTimeout, "upstream-probe-timeout", 10*time.Second, "how long the probe waits for another controller to act on its objects")
	f.Float32Var(&c.qps, "api-qps", 50, "client QPS limit toward the apiserver")
	f.IntVar(&c.burst, "api-burst", 100, "client burst limit toward the apiserver")
}

// options checks the flags and returns the run's options (all but Out).
func (c *controllersFlags) options() (manager.Options, error) {
	o := c.o
	specs, err := manager.Select(c.list)
	if err != nil {
		return o, err
	}
	o.Controllers = specs
	switch {
	case c.kubeconfig != "" && c.inCluster:
		return o, errors.New("--kubeconfig and --in-cluster: give one")
	case c.inCluster:
		if o.RESTConfig, err = rest.InClusterConfig(); err != nil {
			return o, fmt.Errorf("--in-cluster: %w", err)
		}
		if o.Namespace == "" {
			b, err := os.ReadFile(inClusterNamespace)
			if err != nil {
				return o, fmt.Errorf("--in-cluster: reading the pod's namespace: %w (or pass --namespace)", err)
			}
			o.Namespace = strings.TrimSpace(string(b))
		}
	case c.kubeconfig != "":
		if o.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig); err != nil {
			return o, fmt.Errorf("--kubeconfig: %w", err)
		}
	default:
		return o, errors.New("say which cluster: --kubeconfig FILE, or --in-cluster in a pod")
	}
	if o.Namespace == "" {
		o.Namespace = "quartet-system"
	}
	o.RESTConfig.QPS, o.RESTConfig.Burst = c.qps, c.burst
	if o.LeaseDuration <= o.RenewDeadline || o.RenewDeadline <= o.RetryPeriod || o.RetryPeriod <= 0 {
		return o, fmt.Errorf("--leader-elect-lease-duration %s > --leader-elect-renew-deadline %s > --leader-elect-retry-period %s > 0 must hold",
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.ProbeTimeout <= 0 {
		return o, fmt.Errorf("--upstream-probe-timeout %s: want a duration above 0", o.ProbeTimeout)
	}
	return o, nil
}

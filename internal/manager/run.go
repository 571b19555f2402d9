package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"quartet.dev/quartet/internal/version"
)

// FieldManager is the name `quartet controllers` writes under (its user
// agent's product): the probe tells its replicas' writes from another
// controller's by it.
const FieldManager = "quartet-controllers"

// MinKubernetesMinor is the oldest Kubernetes 1.x release `quartet
// controllers` runs against: the first where every field quartet's
// controllers read and write is served (Job managedBy, successPolicy and
// podReplacementPolicy enabled by default).
const MinKubernetesMinor = 33

// Options say how `quartet controllers` runs.
type Options struct {
	// RESTConfig reaches the cluster with the identity the controllers use.
	RESTConfig  *rest.Config
	Controllers []Spec
	// Namespace holds the Lease and the probe's objects.
	Namespace string
	// LeaderElect runs the controllers only while this replica holds the
	// Lease LeaseName; the timings are client-go's (kube-controller-manager's
	// defaults: 15s, 10s, 2s).
	LeaderElect                               bool
	LeaseName                                 string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Identity names this replica in the Lease (default: host name and a
	// random suffix).
	Identity string
	// MetricsAddress serves /metrics over TLS ("" turns it off), with
	// MetricsCertFile and MetricsKeyFile or a self-signed certificate.
	MetricsAddress, MetricsCertFile, MetricsKeyFile string
	// HealthAddress serves /healthz, /livez and /readyz over plain HTTP
	// ("" turns it off).
	HealthAddress string
	// UpstreamDisabled skips the probe for the cluster's own StatefulSet,
	// DaemonSet and CronJob controllers: the user says they are off.
	UpstreamDisabled bool
	// ProbeTimeout is how long the probe waits for another controller.
	ProbeTimeout time.Duration
	// TakeOverJobs makes the Job controller the cluster's own: it takes the
	// Jobs without spec.managedBy (or naming kubernetes.io/job-controller),
	// as upstream's would, instead of only those naming JobManagedBy. The
	// user says the cluster's own Job controller is off.
	TakeOverJobs bool
	// Out receives the progress lines.
	Out io.Writer
}

// Run runs the chosen controllers against the cluster until ctx is done:
// checks, then endpoints, then (with leader election, once this replica
// leads) the controllers. On ctx done a leader stops its controllers, then
// releases the Lease, so the next replica takes over at once.
func Run(ctx context.Context, o Options) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if len(o.Controllers) == 0 {
		return errors.New("no controller to run")
	}
	rc := rest.CopyConfig(o.RESTConfig)
	rc.UserAgent = FieldManager + "/" + version.Quartet
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	var names []string
	for _, s := range o.Controllers {
		names = append(names, s.Name)
	}
	fmt.Fprintf(o.Out, "%s: controllers %s against %s\n", version.String(), strings.Join(names, ", "), rc.Host)

	server, err := CheckVersion(client)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "  apiserver %s\n", server)
	if err := checkAccess(ctx, client, o); err != nil {
		return err
	}
	fmt.Fprintln(o.Out, "  permissions: every one the controllers need")

	h := &health{}
	if o.LeaderElect {
		h.watchdog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	}
	served, err := startServers(ctx, client, o, h)
	if err != nil {
		return err
	}

	if err := probeOthers(ctx, client, o); err != nil {
		return err
	}
	managedBy := jobsManagedBy(o)
	workClient, err := protobufClient(rc)
	if err != nil {
		return err
	}
	h.ready.Store(true)

	start := func(ctx context.Context) (*Running, error) {
		return Start(ctx, Config{
			Controllers:    o.Controllers,
			InformerClient: workClient,
			ClientFor: func(Spec) (kubernetes.Interface, error) {
				return workClient, nil
			},
			ManagedBy: managedBy,
		})
	}
	var runErr error
	if !o.LeaderElect {
		fmt.Fprintln(o.Out, "  running (no leader election)")
		r, err := start(ctx)
		if err != nil {
			return err
		}
		h.synced.Store(ptrTo(r.Synced))
		<-r.Done()
	} else {
		runErr = lead(ctx, client, o, h, start)
	}
	for _, errc := range served {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

func ptrTo[T any](v T) *T { return &v }

// lead runs the controllers while this replica holds the Lease.
func lead(ctx context.Context, client kubernetes.Interface, o Options, h *health, start func(context.Context) (*Running, error)) error {
	identity := o.Identity
	if identity == "" {
		host, _ := os.Hostname()
		identity = host + "_" + string(uuid.NewUUID())
	}
	// The elector gets a context of its own, cancelled only once the
	// controllers have stopped: cancelling it releases the Lease.
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	l := &leader{ctx: ctx, o: o, h: h, identity: identity, start: start, stopElector: stopElector}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1ObjectMeta(o.Namespace, o.LeaseName),
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.RenewDeadline,
		RetryPeriod:     o.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.LeaseName,
		WatchDog:        h.watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: l.run,
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != identity {
					fmt.Fprintf(o.Out, "  standing by: %s leads (Lease %s/%s)\n", id, o.Namespace, o.LeaseName)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	if h.watchdog != nil {
		h.watchdog.SetLeaderElection(le)
	}
	fmt.Fprintf(o.Out, "  waiting for the Lease %s/%s as %s\n", o.Namespace, o.LeaseName, identity)
	go l.standDown()
	le.Run(electorCtx)
	return l.result()
}

// leader is one replica's turns at leading: the controllers it runs while
// it holds the Lease, and how its run ended.
type leader struct {
	ctx         context.Context // the run's: done means stop and hand over
	o           Options
	h           *health
	identity    string
	start       func(context.Context) (*Running, error)
	stopElector context.CancelFunc // releases the Lease

	mu       sync.Mutex
	running  *Running
	stopping bool
	led      bool
	failed   error
}

// run is the elector's OnStartedLeading: it runs the controllers until
// leading ends or the run is done.
func (l *leader) run(leading context.Context) {
	runCtx, cancel := context.WithCancel(leading)
	defer cancel()
	go func() {
		select {
		case <-l.ctx.Done():
		case <-runCtx.Done():
		}
		cancel()
	}()
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return
	}
	l.led = true
	fmt.Fprintf(l.o.Out, "  leading (Lease %s/%s, identity %s): controllers started\n", l.o.Namespace, l.o.LeaseName, l.identity)
	r, err := l.start(runCtx)
	if err != nil {
		l.failed = err
		l.mu.Unlock()
		l.stopElector()
		return
	}
	l.running = r
	l.h.synced.Store(ptrTo(r.Synced))
	l.mu.Unlock()
	<-r.Done()
	l.h.synced.Store(nil)
	if l.ctx.Err() != nil {
		l.stopElector() // hand over: release the Lease now that nothing runs
	}
}

// standDown waits for the run to be done, then for the controllers to stop
// (at most the renew deadline), and stops the elector.
func (l *leader) standDown() {
	<-l.ctx.Done()
	l.mu.Lock()
	l.stopping = true
	r := l.running
	l.mu.Unlock()
	if r != nil {
		select {
		case <-r.Done():
		case <-time.After(l.o.RenewDeadline):
		}
	}
	l.stopElector()
}

// result is how leading ended, once the elector has returned.
func (l *leader) result() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.failed != nil:
		return l.failed
	case l.led && l.ctx.Err() == nil:
		// The Lease was lost (the apiserver unreachable past the renew
		// deadline, or another replica took it): stop, as
		// kube-controller-manager does, and let the process be restarted.
		return errors.New("leader election lost: stopped the controllers")
	}
	if l.led {
		fmt.Fprintln(l.o.Out, "  stopped the controllers and released the Lease")
	}
	return nil
}

// startServers opens the health and metrics listeners (so that a port in
// use fails the start) and serves them until ctx is done.
func startServers(ctx context.Context, client kubernetes.Interface, o Options, h *health) ([]<-chan error, error) {
	var served []<-chan error
	if o.HealthAddress != "" {
		l, err := net.Listen("tcp", o.HealthAddress)
		if err != nil {
			return nil, fmt.Errorf("--health-address: %w", err)
		}
		served = append(served, serve(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, l, false))
		fmt.Fprintf(o.Out, "  health: http://%s/healthz, /readyz\n", l.Addr())
	}
	if o.MetricsAddress != "" {
		handler, err := metricsHandler(client)
		if err != nil {
			return nil, err
		}
		cert, err := serverCert(o.MetricsCertFile, o.MetricsKeyFile)
		if err != nil {
			return nil, fmt.Errorf("metrics certificate: %w", err)
		}
		l, err := net.Listen("tcp", o.MetricsAddress)
		if err != nil {
			return nil, fmt.Errorf("--metrics-address: %w", err)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
		served = append(served, serve(ctx, srv, l, true))
		fmt.Fprintf(o.Out, "  metrics: https://%s/metrics (bearer token, RBAC get on /metrics)\n", l.Addr())
	}
	return served, nil
}

// CheckVersion returns the apiserver's version, or an error if it is older
// than 1.MinKubernetesMinor.
func CheckVersion(client kubernetes.Interface) (string, error) {
	info, err := client.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("reaching the apiserver: %w", err)
	}
	major, _ := strconv.Atoi(strings.TrimRight(info.Major, "+"))
	minor, _ := strconv.Atoi(strings.TrimRight(info.Minor, "+"))
	if major < 1 || (major == 1 && minor < MinKubernetesMinor) {
		return "", fmt.Errorf("the apiserver is Kubernetes %s: quartet's controllers need 1.%d or newer", info.GitVersion, MinKubernetesMinor)
	}
	return info.GitVersion, nil
}

// checkAccess checks every permission the run needs and lists the missing.
func checkAccess(ctx context.Context, client kubernetes.Interface, o Options) error {
	var want []Access
	for _, s := range o.Controllers {
		want = append(want, Accesses(ControllerRules(s.Name), "")...)
	}
	if o.LeaderElect {
		want = append(want, Accesses(ElectionRules(), o.Namespace)...)
	}
	if len(probedAmong(o)) > 0 && !o.UpstreamDisabled {
		want = append(want, Accesses(ProbeRules(), o.Namespace)...)
	}
	if o.MetricsAddress != "" {
		want = append(want, Accesses(MetricsAuthRules(), "")...)
	}
	var uniq []Access
	for _, a := range want {
		if !containsAccess(uniq, a) {
			uniq = append(uniq, a)
		}
	}
	missing, err := Missing(ctx, client, uniq)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the identity in use lacks %d permission(s) the chosen controllers need:", len(missing))
	for _, a := range missing {
		fmt.Fprintf(&b, "\n  %s", a)
	}
	b.WriteString("\n(deploy/ and the Helm chart grant them; see docs/controllers-anywhere.md)")
	return errors.New(b.String())
}

func containsAccess(list []Access, a Access) bool {
	for _, b := range list {
		if b == a {
			return true
		}
	}
	return false
}

// probeOthers refuses to start beside another controller of a kind
// without spec.managedBy, unless the user says the cluster's own are off.
func probeOthers(ctx context.Context, client kubernetes.Interface, o Options) error {
	probed := probedAmong(o)
	switch {
	case len(probed) == 0:
		return nil
	case o.UpstreamDisabled:
		fmt.Fprintf(o.Out, "  other controllers: not probed (--upstream-controllers-disabled) for %s\n", strings.Join(probed, ", "))
		return nil
	}
	if err := ProbeUpstream(ctx, client, o.Namespace, FieldManager, probed, o.ProbeTimeout); err != nil {
		return fmt.Errorf("%w\nturn the cluster's own controllers of these kinds off (kube-controller-manager --controllers=*,-%s), "+
			"or leave them out of --controllers%s; if they are off, pass --upstream-controllers-disabled", err, strings.Join(probed, ",-"), jobsHint(o))
	}
	fmt.Fprintf(o.Out, "  other controllers: none acting on %s (probed for %s)\n", strings.Join(probed, ", "), o.ProbeTimeout)
	return nil
}

// jobsManagedBy returns the Job controller's kit.Config.ManagedBy and says
// which Jobs it takes.
func jobsManagedBy(o Options) string {
	for _, s := range o.Controllers {
		if s.Name != "job" {
			continue
		}
		if o.TakeOverJobs {
			fmt.Fprintln(o.Out, "  jobs: every Job without spec.managedBy, as the cluster's Job controller (--take-over-jobs)")
		} else {
			fmt.Fprintf(o.Out, "  jobs: those whose spec.managedBy is %s\n", JobManagedBy)
		}
	}
	if o.TakeOverJobs {
		return ""
	}
	return JobManagedBy
}

// protobufClient is the client the controllers and their informers use:
// protobuf, as kube-controller-manager's by default
// (--kube-api-content-type); the start-up checks keep JSON.
func protobufClient(rc *rest.Config) (kubernetes.Interface, error) {
	pc := rest.CopyConfig(rc)
	pc.ContentType = runtime.ContentTypeProtobuf
	pc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return kubernetes.NewForConfig(pc)
}

// probedAmong lists the chosen controllers the probe checks for: those of
// Probed, and the Job controller when it takes over the Jobs without
// spec.managedBy.
func probedAmong(o Options) []string {
	var out []string
	for _, s := range o.Controllers {
		if slices.Contains(Probed, s.Name) || (s.Name == "job" && o.TakeOverJobs) {
			out = append(out, s.Name)
		}
	}
	return out
}

// jobsHint is the other way out for a Job controller taking over Jobs.
func jobsHint(o Options) string {
	if o.TakeOverJobs {
		return " (for Jobs: drop --take-over-jobs and run only the Jobs whose spec.managedBy is " + JobManagedBy + ")"
	}
	return ""
}

func metav1ObjectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

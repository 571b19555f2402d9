package controlplane

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// workloadControllerNames are the kube-controller-manager controllers that
// quartet replaces with its own.
var workloadControllerNames = []string{
	names.StatefulSetController,
	names.DaemonSetController,
	names.JobController,
	names.CronJobController,
	names.TTLAfterFinishedController,
}

type controllerManagerConfig struct {
	Kubeconfig   string
	SAKeyFile    string
	CAFile       string
	CAKeyFile    string
	ClusterCIDR  string
	ServiceCIDR  string
	RunWorkloads bool // run upstream's five workload controllers too
	APIQPS       float32
	APIBurst     int
}

func controllerManagerFlags(c controllerManagerConfig) []string {
	controllers := []string{"*"}
	if !c.RunWorkloads {
		for _, n := range workloadControllerNames {
			controllers = append(controllers, "-"+n)
		}
	}
	return []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.SAKeyFile,
		"--root-ca-file=" + c.CAFile,
		"--cluster-signing-cert-file=" + c.CAFile,
		"--cluster-signing-key-file=" + c.CAKeyFile,
		"--controllers=" + strings.Join(controllers, ","),
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + c.ClusterCIDR,
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--node-cidr-mask-size=24",
		fmt.Sprintf("--kube-api-qps=%g", c.APIQPS),
		fmt.Sprintf("--kube-api-burst=%d", c.APIBurst),
	}
}

// runControllerManager runs kube-controller-manager in this process until ctx
// is done.
func runControllerManager(ctx context.Context, c controllerManagerConfig) error {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	nfs := s.Flags(kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases())
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(controllerManagerFlags(c)); err != nil {
		return fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	s.ParsedFlags = &nfs
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cfg, err := s.Config(ctx, kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases())
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	return kcm.Run(ctx, cfg.Complete())
}

type schedulerConfig struct {
	Kubeconfig string
	APIQPS     float32
	APIBurst   int
}

// runScheduler runs kube-scheduler in this process until ctx is done.
func runScheduler(ctx context.Context, c schedulerConfig) error {
	opts := scheduleroptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		fmt.Sprintf("--kube-api-qps=%g", c.APIQPS),
		fmt.Sprintf("--kube-api-burst=%d", c.APIBurst),
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("kube-scheduler flags: %w", err)
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cc, sched, err := scheduler.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	return scheduler.Run(ctx, cc, sched)
}

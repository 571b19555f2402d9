package controlplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/configz"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/controller-manager/pkg/clientbuilder"
	controllerhealthz "k8s.io/controller-manager/pkg/healthz"
	"k8s.io/controller-manager/pkg/informerfactory"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmconfig "k8s.io/kubernetes/cmd/kube-controller-manager/app/config"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"quartet.dev/quartet/internal/component"
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
	Kubeconfig  string
	SAKeyFile   string
	CAFile      string
	CAKeyFile   string
	ClusterCIDR string
	ServiceCIDR string
	// WorkloadsOnly runs just upstream's five workload controllers, the
	// reference that replaces quartet's in upstream mode; otherwise every
	// default controller but those five runs.
	WorkloadsOnly bool
	APIQPS        float32
	APIBurst      int
}

// ControllerManager is kube-controller-manager without the five workload
// controllers. It starts once the apiserver's /healthz passes every check,
// post-start hooks included: kube-controller-manager waits for that itself,
// but for 10 s only, after which it cannot be started again in this process.
func (c *Cluster) ControllerManager() component.Component {
	return component.Component{Name: "kube-controller-manager", Start: func(ctx context.Context, progress component.Progress) (string, func() error, error) {
		if err := c.waitHealthy(ctx, progress); err != nil {
			return "", nil, err
		}
		// A restart registers its configuration page again.
		configz.Delete(kcm.ConfigzName)
		errc := make(chan error, 1)
		go func() { errc <- runControllerManager(ctx, c.kcmConfig()) }()
		if err := c.waitPodsAccepted(ctx, errc, progress); err != nil {
			return "", nil, err
		}
		return "every default controller but the five workload controllers", func() error { return <-errc }, nil
	}}
}

// waitPodsAccepted waits until namespace default has its ServiceAccount
// (made by kube-controller-manager's ServiceAccount controller) and its
// kube-root-ca.crt (the root CA publisher's), or kube-controller-manager
// has stopped. Until then a pod applied there is refused (`serviceaccount
// "default" not found`) or cannot mount its API access volume, so the
// cluster is not ready for the user's first `kubectl apply`.
func (c *Cluster) waitPodsAccepted(ctx context.Context, exited <-chan error, progress component.Progress) error {
	core := c.Admin().CoreV1()
	for {
		_, saErr := core.ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		_, caErr := core.ConfigMaps(metav1.NamespaceDefault).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if saErr == nil && caErr == nil {
			return nil
		}
		progress("waiting for namespace default's ServiceAccount and kube-root-ca.crt")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("stopped before namespace default had its ServiceAccount: %w", cmp.Or(err, errors.New("no error given")))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Scheduler is kube-scheduler.
func (c *Cluster) Scheduler() component.Component {
	return component.Component{Name: "kube-scheduler", Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
		configz.Delete(schedulerConfigzName)
		run, err := setupScheduler(ctx, schedulerConfig{Kubeconfig: c.certs.schedulerKubeconfig, APIQPS: c.cfg.APIQPS, APIBurst: c.cfg.APIBurst})
		if err != nil {
			return "", nil, err
		}
		errc := make(chan error, 1)
		go func() { errc <- run() }()
		return "", func() error { return <-errc }, nil
	}}
}

// schedulerConfigzName is the configuration page kube-scheduler registers.
const schedulerConfigzName = "componentconfig"

// waitHealthy waits until the apiserver's /healthz passes every check.
func (c *Cluster) waitHealthy(ctx context.Context, progress component.Progress) error {
	admin := c.Admin()
	for {
		failing, err := checkEndpoint(ctx, admin, "/healthz", nil)
		if err == nil && len(failing) == 0 {
			return nil
		}
		progress("waiting for the apiserver's %s", describeFailing(failing, err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) kcmConfig() controllerManagerConfig {
	return controllerManagerConfig{
		Kubeconfig:  c.certs.kcmKubeconfig,
		SAKeyFile:   c.certs.saKey,
		CAFile:      c.CA.CertFile(),
		CAKeyFile:   filepath.Join(c.CA.Dir, "ca.key"),
		ClusterCIDR: cmp.Or(c.cfg.ClusterCIDR, ClusterCIDR),
		ServiceCIDR: ServiceCIDR,
		APIQPS:      c.cfg.APIQPS,
		APIBurst:    c.cfg.APIBurst,
	}
}

// gcWorkers is kube-controller-manager's --concurrent-gc-syncs (upstream's
// default is 20).
const gcWorkers = 100

func controllerManagerFlags(c controllerManagerConfig) []string {
	controllers := []string{"*"}
	for _, n := range workloadControllerNames {
		controllers = append(controllers, "-"+n)
	}
	if c.WorkloadsOnly {
		controllers = workloadControllerNames
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
		// The garbage collector deletes a deleted owner's dependents with
		// a GET and a DELETE each; with upstream's 20 workers it set the
		// pace of deleting a large Job (issue 13 item 9). Both controller
		// modes run this kube-controller-manager alike.
		fmt.Sprintf("--concurrent-gc-syncs=%d", gcWorkers),
		fmt.Sprintf("--kube-api-qps=%g", c.APIQPS),
		fmt.Sprintf("--kube-api-burst=%d", c.APIBurst),
	}
}

func controllerManagerConfigFor(ctx context.Context, c controllerManagerConfig) (*kcmconfig.CompletedConfig, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	nfs := s.Flags(kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases())
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(controllerManagerFlags(c)); err != nil {
		return nil, fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	s.ParsedFlags = &nfs
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	cfg, err := s.Config(ctx, kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases())
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager config: %w", err)
	}
	return cfg.Complete(), nil
}

// runControllerManager runs kube-controller-manager, without the five
// workload controllers, in this process until ctx is done.
func runControllerManager(ctx context.Context, c controllerManagerConfig) error {
	cfg, err := controllerManagerConfigFor(ctx, c)
	if err != nil {
		return err
	}
	cfg.Kubeconfig.Wrap(func(rt http.RoundTripper) http.RoundTripper { return patientHealthz{ctx: ctx, next: rt} })
	return kcm.Run(ctx, cfg)
}

// patientHealthz makes kube-controller-manager's start-up wait for the
// apiserver's /healthz as long as it takes. Its own wait gives up after 10 s
// and fails the start, and the informer name the failed start reserved is
// never released, so a second start in this process would fail too.
type patientHealthz struct {
	ctx  context.Context
	next http.RoundTripper
}

func (p patientHealthz) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Path != "/healthz" {
		return p.next.RoundTrip(req)
	}
	for {
		resp, err := p.next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-p.ctx.Done():
			return nil, p.ctx.Err()
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dropManagedFields trims informer objects as kube-controller-manager's
// informers do.
func dropManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil && a.GetManagedFields() != nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

// runUpstreamWorkloadControllers runs upstream's StatefulSet, DaemonSet,
// Job, CronJob and TTL-after-finished controllers as a controller manager of
// their own: their own informers, clients (the same service-account
// identities as in kube-controller-manager) and events. In upstream mode
// they stand exactly where quartet's controllers stand in quartet mode, so
// the two modes differ only in the workload controllers, and the CPU and
// API requests of those controllers can be measured apart from the rest.
func runUpstreamWorkloadControllers(ctx context.Context, c controllerManagerConfig) error {
	c.WorkloadsOnly = true
	cfg, err := controllerManagerConfigFor(ctx, c)
	if err != nil {
		return err
	}
	cfg.EventBroadcaster.StartStructuredLogging(0)
	cfg.EventBroadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events("")})
	defer cfg.EventBroadcaster.Shutdown()
	root := clientbuilder.SimpleControllerClientBuilder{ClientConfig: cfg.Kubeconfig}
	perController := clientbuilder.NewDynamicClientBuilder(rest.AnonymousClientConfig(cfg.Kubeconfig), cfg.Client.CoreV1(), metav1.NamespaceSystem)
	// kcm.CreateControllerContext registers its informers under the name
	// "kube-controller-manager", which the main instance holds, so the
	// context is assembled here, the same way.
	informerClient, err := root.Client("shared-informers")
	if err != nil {
		return fmt.Errorf("workload controllers: %w", err)
	}
	name, err := cache.NewInformerName("upstream-workload-controllers")
	if err != nil {
		return fmt.Errorf("workload controllers: %w", err)
	}
	resync := kcm.ResyncPeriod(cfg)
	factory := informers.NewSharedInformerFactoryWithOptions(informerClient, resync(), informers.WithTransform(dropManagedFields), informers.WithInformerName(name))
	cctx := kcm.ControllerContext{
		ClientBuilder:            perController,
		InformerFactory:          factory,
		ComponentConfig:          cfg.ComponentConfig,
		InformersStarted:         make(chan struct{}),
		ResyncPeriod:             resync,
		ControllerManagerMetrics: controllersmetrics.NewControllerManagerMetrics("upstream-workload-controllers"),
	}
	cctx.ObjectOrMetadataInformerFactory = informerfactory.NewInformerFactory(factory, nil)
	descriptors := map[string]*kcm.ControllerDescriptor{}
	for name, d := range kcm.NewControllerDescriptors() {
		if slices.Contains(workloadControllerNames, name) {
			descriptors[name] = d
		}
	}
	ctrls, err := kcm.BuildControllers(ctx, cctx, descriptors, nil, controllerhealthz.NewMutableHealthzHandler())
	if err != nil {
		return fmt.Errorf("workload controllers: %w", err)
	}
	cctx.InformerFactory.Start(ctx.Done())
	defer cctx.InformerFactory.Shutdown()
	close(cctx.InformersStarted)
	if !kcm.RunControllers(ctx, cctx, ctrls, kcm.ControllerStartJitter, cfg.ControllerShutdownTimeout) {
		return errors.New("workload controllers: shutdown timeout reached")
	}
	return nil
}

type schedulerConfig struct {
	Kubeconfig string
	APIQPS     float32
	APIBurst   int
}

// setupScheduler builds kube-scheduler; run runs it in this process until
// ctx is done.
func setupScheduler(ctx context.Context, c schedulerConfig) (run func() error, err error) {
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
		return nil, fmt.Errorf("kube-scheduler flags: %w", err)
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	cc, sched, err := scheduler.Setup(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler: %w", err)
	}
	return func() error {
		err := scheduler.Run(ctx, cc, sched)
		if ctx.Err() != nil {
			// Without leader election Run ends only when ctx does, and
			// then always with "finished without leader elect": a normal
			// stop.
			return nil
		}
		return err
	}, nil
}

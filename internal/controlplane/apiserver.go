package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	kubeapiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/pki"
)

// apiserverConfig is what startAPIServer needs; paths point into the data dir.
type apiserverConfig struct {
	Listener    net.Listener
	EtcdServers []string
	// EtcdCAFile, EtcdCertFile and EtcdKeyFile are the client TLS of an
	// external etcd ("" for the embedded one, on its unix socket).
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	CertFile, KeyFile                     string
	ClientCAFile                          string
	SAKeyFile                             string
	KubeletClientCert                     string
	KubeletClientKey                      string
	ServiceCIDR                           string
	// SkipReadyChecks are /readyz checks start-up does not wait for.
	SkipReadyChecks []string
	// WrapHandler, when set, wraps the API handler inside authentication, so
	// it sees the requesting user (quartet counts requests per identity).
	WrapHandler func(http.Handler) http.Handler
	// NodeTokens authenticates the node agents' in-memory tokens before
	// the apiserver's own authenticators (nil: none).
	NodeTokens *nodeTokens
}

// apiserverFlags are kube-apiserver's own flags, so the embedded server is
// configured exactly as a user would configure a standalone one.
func apiserverFlags(c apiserverConfig) []string {
	flags := []string{
		"--etcd-servers=" + strings.Join(c.EtcdServers, ","),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The advertise address is loopback, which Endpoints reject; the
		// default Service "kubernetes" keeps its ClusterIP without endpoints.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + c.CertFile,
		"--tls-private-key-file=" + c.KeyFile,
		"--client-ca-file=" + c.ClientCAFile,
		"--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.SAKeyFile,
		"--service-account-signing-key-file=" + c.SAKeyFile,
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--kubelet-client-certificate=" + c.KubeletClientCert,
		"--kubelet-client-key=" + c.KubeletClientKey,
		"--kubelet-certificate-authority=" + c.ClientCAFile,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--profiling=false",
		"--enable-garbage-collector=true",
	}
	for flag, v := range map[string]string{"--etcd-cafile": c.EtcdCAFile, "--etcd-certfile": c.EtcdCertFile, "--etcd-keyfile": c.EtcdKeyFile} {
		if v != "" {
			flags = append(flags, flag+"="+v)
		}
	}
	return flags
}

// APIServer is kube-apiserver. It is ready when /readyz says so (on a warm
// start, without the two bootstrap post-start hooks that open with a fixed
// one-second sleep: what they reconcile is already stored; the controller
// manager waits for them), quartet's RBAC is applied and the kubeconfigs
// are written. It cannot be started twice in one process, so quartet stops
// when it does.
func (c *Cluster) APIServer() component.Component {
	return component.Component{Name: "kube-apiserver", Core: true, Policy: component.Fatal, Start: c.startAPIServer}
}

func (c *Cluster) startAPIServer(ctx context.Context, progress component.Progress) (string, func() error, error) {
	var skipReady []string
	if c.warm {
		skipReady = []string{"poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes"}
	}
	certs := c.certs
	adminConfig := restConfig(c.Server, c.CA, certs.admin)
	wait, err := runAPIServer(ctx, apiserverConfig{
		Listener:          c.apiListener,
		EtcdServers:       c.etcdServers,
		EtcdCAFile:        c.cfg.Datastore.CAFile,
		EtcdCertFile:      c.cfg.Datastore.CertFile,
		EtcdKeyFile:       c.cfg.Datastore.KeyFile,
		CertFile:          certs.serving.CertFile,
		KeyFile:           certs.serving.KeyFile,
		ClientCAFile:      c.CA.CertFile(),
		SAKeyFile:         certs.saKey,
		KubeletClientCert: certs.kubeletClient.CertFile,
		KubeletClientKey:  certs.kubeletClient.KeyFile,
		ServiceCIDR:       ServiceCIDR,
		SkipReadyChecks:   skipReady,
		WrapHandler:       newRequestCounter().wrap,
		NodeTokens:        c.nodeTokens,
	}, adminConfig, progress)
	if err != nil {
		return "", nil, err
	}
	adminConfig.QPS, adminConfig.Burst = c.cfg.APIQPS, c.cfg.APIBurst
	admin, err := kubernetes.NewForConfig(adminConfig)
	if err != nil {
		return "", nil, err
	}
	c.mu.Lock()
	c.admin = admin
	c.mu.Unlock()
	if err := RetryAPI(ctx, progress, "applying quartet's RBAC", func() error { return applyRBAC(ctx, admin) }); err != nil {
		return "", nil, err
	}
	for _, kc := range []struct {
		path string
		cert *pki.Issued
		user string
	}{
		{c.Dir.Kubeconfig(), certs.admin, userAdmin},
		{certs.kcmKubeconfig, certs.kcm, userControllerManager},
		{certs.schedulerKubeconfig, certs.scheduler, userScheduler},
		{certs.workloadsKubeconfig, certs.workloads, userWorkloadInformers},
	} {
		if err := writeKubeconfig(kc.path, c.Server, c.CA, kc.cert, kc.user); err != nil {
			return "", nil, err
		}
	}
	return c.Server, wait, nil
}

// runAPIServer runs kube-apiserver in this process and returns once /readyz
// answers ok, however long that takes (a large data dir fills the watch
// caches first), reporting the checks it waits for. The server stops when
// ctx is done; wait returns once it has.
func runAPIServer(ctx context.Context, c apiserverConfig, readyClient *rest.Config, progress component.Progress) (wait func() error, err error) {
	s := apiserveroptions.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(apiserverFlags(c)); err != nil {
		return nil, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	s.SecureServing.Listener = c.Listener
	s.SecureServing.BindPort = c.Listener.Addr().(*net.TCPAddr).Port

	logger := klog.FromContext(ctx)
	phase := time.Now()
	mark := func(what string) {
		logger.Info("kube-apiserver start phase", "phase", what, "took", time.Since(phase))
		phase = time.Now()
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	mark("options")
	config, err := kubeapiserver.NewConfig(completed)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	if c.WrapHandler != nil {
		// The aggregator is the outermost server: every request passes its
		// handler chain, so the wrapper goes there.
		generic := &config.Aggregator.GenericConfig.Config
		build := generic.BuildHandlerChainFunc
		generic.BuildHandlerChainFunc = func(h http.Handler, gc *genericapiserver.Config) http.Handler {
			return build(c.WrapHandler(h), gc)
		}
	}
	if c.NodeTokens != nil {
		addNodeTokens(c.NodeTokens,
			&config.Aggregator.GenericConfig.Authentication,
			&config.KubeAPIs.ControlPlane.Generic.Authentication,
			&config.ApiExtensions.GenericConfig.Authentication)
	}
	cc, err := config.Complete()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	mark("config")
	server, err := kubeapiserver.CreateServerChain(cc)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	mark("server chain")
	prepared, err := server.PrepareRun()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- prepared.Run(ctx) }()
	wait = func() error { return <-errCh }

	mark("prepare run")
	if err := waitReady(ctx, readyClient, c.SkipReadyChecks, errCh, progress); err != nil {
		return nil, err
	}
	mark("ready")
	return wait, nil
}

// waitReady waits until the apiserver's /readyz passes every check but
// skip, or the apiserver ends (exited), reporting what it waits for.
func waitReady(ctx context.Context, readyClient *rest.Config, skip []string, exited <-chan error, progress component.Progress) error {
	client, err := kubernetes.NewForConfig(readyClient)
	if err != nil {
		return err
	}
	for {
		failing, err := checkEndpoint(ctx, client, "/readyz", skip)
		if err == nil && len(failing) == 0 {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("kube-apiserver exited: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		progress("waiting for %s", describeFailing(failing, err))
	}
}

// checkEndpoint asks a health endpoint (/readyz, /healthz) for its verbose
// report, leaving out the checks in exclude, and returns the checks that
// fail; err is set when the endpoint could not be asked at all.
func checkEndpoint(ctx context.Context, client kubernetes.Interface, path string, exclude []string) (failing []string, err error) {
	req := client.Discovery().RESTClient().Get().AbsPath(path).Param("verbose", "")
	for _, check := range exclude {
		req = req.Param("exclude", check)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res := req.Do(rctx)
	var code int
	res.StatusCode(&code)
	body, err := res.Raw()
	switch code {
	case http.StatusOK:
		return nil, nil
	case 0:
		return nil, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if name, ok := strings.CutPrefix(line, "[-]"); ok {
			name, _, _ = strings.Cut(name, " ")
			failing = append(failing, name)
		}
	}
	if len(failing) == 0 {
		failing = []string{fmt.Sprintf("%s (HTTP %d)", path, code)}
	}
	return failing, nil
}

// describeFailing says what a health wait is waiting for.
func describeFailing(failing []string, err error) string {
	if err != nil {
		return "the apiserver to answer (" + err.Error() + ")"
	}
	if len(failing) > 4 {
		return fmt.Sprintf("%s and %d more", strings.Join(failing[:4], ", "), len(failing)-4)
	}
	return strings.Join(failing, ", ")
}

// RetryAPI calls f until it succeeds, ctx is done, or it fails in a way
// waiting will not fix; it retries, once a second and reporting each
// failure, what an apiserver still busy after a start answers: timeouts,
// throttling, unavailability and refused connections.
func RetryAPI(ctx context.Context, progress component.Progress, what string, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		if !transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		progress("%s: %v; retrying", what, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(time.Second):
		}
	}
}

func transient(err error) bool {
	var netErr net.Error
	var urlErr *url.Error
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) ||
		errors.As(err, &netErr) || errors.As(err, &urlErr)
}

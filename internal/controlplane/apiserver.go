package controlplane

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	kubeapiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
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

// startAPIServer runs kube-apiserver in this process and returns once
// /readyz answers ok. The server stops when ctx is done; stopped is closed
// once it has.
func startAPIServer(ctx context.Context, c apiserverConfig, readyClient *rest.Config) (stopped <-chan struct{}, err error) {
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
	done := make(chan struct{})
	errCh := make(chan error, 1)
	go func() {
		defer close(done)
		if err := prepared.Run(ctx); err != nil {
			errCh <- err
		}
	}()

	mark("prepare run")
	client, err := kubernetes.NewForConfig(readyClient)
	if err != nil {
		return nil, err
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-errCh:
			return false, fmt.Errorf("kube-apiserver exited: %w", err)
		default:
		}
		req := client.Discovery().RESTClient().Get().AbsPath("/readyz")
		for _, check := range c.SkipReadyChecks {
			req = req.Param("exclude", check)
		}
		res := req.Do(ctx)
		var code int
		res.StatusCode(&code)
		return code == http.StatusOK, nil
	})
	if err != nil {
		return nil, err
	}
	mark("ready")
	return done, nil
}

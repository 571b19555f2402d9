// Package controlplane starts quartet's cluster in one process: embedded etcd
// (or an external one), upstream kube-apiserver, kube-controller-manager and
// kube-scheduler as libraries, and quartet's own workload controllers, all
// under one context.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/pki"
	"quartet.dev/quartet/internal/version"
)

// Workload controller modes.
const (
	ModeQuartet  = "quartet"  // quartet's own StatefulSet, DaemonSet, Job, CronJob, TTL controllers
	ModeUpstream = "upstream" // upstream's, from kube-controller-manager: the reference
	ModeNone     = "none"     // neither: a cluster for controllers run elsewhere (`quartet controllers`)
)

// Config is what `quartet up` asks for.
type Config struct {
	DataDir             string
	APIPort             int
	WorkloadControllers string
	// Datastore, when it has endpoints, replaces embedded etcd.
	Datastore Datastore
	// APIQPS and APIBurst are the client rate limits of every in-process
	// component, workload controllers in both modes alike.
	APIQPS   float32
	APIBurst int
	// Progress receives the start-up lines and the ready line.
	Progress io.Writer
	// Addons start after the core is ready, in order (node agents, storage,
	// DNS); each returns once its part is ready.
	Addons []Addon
}

// Addon is a part of the cluster that runs on top of the control plane.
type Addon struct {
	Name string
	// Start returns once the addon is ready, with a short detail for the
	// progress line; run, when not nil, blocks until ctx is done.
	Start func(ctx context.Context, cp *Cluster) (detail string, run func() error, err error)
}

// Network ranges of every quartet cluster.
const (
	ServiceCIDR   = "10.96.0.0/16"
	ClusterCIDR   = "10.128.0.0/12" // a /24 per node: room for 4096 nodes
	ClusterDomain = "cluster.local"
	// KubernetesServiceIP is the first address of ServiceCIDR.
	KubernetesServiceIP = "10.96.0.1"
	// DNSServiceIP is the ClusterIP of kube-dns.
	DNSServiceIP = "10.96.0.10"
)

// Cluster is a running control plane, as the addons and the CLI see it.
type Cluster struct {
	DataDir    string
	Server     string
	CA         *pki.Authority
	Kubeconfig string
	Mode       string
	// CPU profiles the process, attributing samples to the workload
	// controllers by their pprof label.
	CPU   *CPUProfiler
	qps   float32
	burst int
	mu    sync.Mutex
	admin kubernetes.Interface
}

// ClientFor returns a client authenticated as user (in groups), with the
// control plane's rate limits.
func (c *Cluster) ClientFor(user string, groups ...string) (kubernetes.Interface, *rest.Config, error) {
	file := "client-" + sanitize(user)
	cert, err := issueClient(c.CA, file, user, groups...)
	if err != nil {
		return nil, nil, err
	}
	rc := restConfig(c.Server, c.CA, cert)
	rc.QPS, rc.Burst = c.qps, c.burst
	rc.UserAgent = user
	cs, err := kubernetes.NewForConfig(rc)
	return cs, rc, err
}

// Admin returns a cluster-admin client.
func (c *Cluster) Admin() kubernetes.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.admin
}

// User names of quartet's in-process components, for addons.
const (
	UserNodeAgents  = userNodeAgents
	UserProvisioner = userProvisioner
	UserDNS         = userDNS
	// UserKubeletClient is the identity the apiserver presents to node agents.
	UserKubeletClient = userKubeletClient
)

// Run starts the cluster, prints the ready line, and blocks until ctx is done
// or a component fails; then it stops everything and returns.
func Run(ctx context.Context, cfg Config) error {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return err
	}
	out := cfg.Progress
	if out == nil {
		out = io.Discard
	}
	dir := datadir.Dir(cfg.DataDir)
	fixed, err := dir.Prepare()
	if err != nil {
		return err
	}
	release, err := dir.Lock()
	if err != nil {
		return err
	}
	defer release()
	if err := setupLogging(dir.LogFile()); err != nil {
		return err
	}
	apiListener, err := listenAPI(cfg.APIPort)
	if err != nil {
		return err
	}
	defer apiListener.Close()

	fmt.Fprintf(out, "%s, data dir %s, logs in %s\n", version.String(), cfg.DataDir, dir.LogFile())
	for _, f := range fixed {
		fmt.Fprintf(out, "warning: %s\n", f)
	}
	if err := version.Check(); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	}
	step := func(name, detail string) {
		fmt.Fprintf(out, "  %-26s %-44s %5.1fs\n", name, detail, time.Since(start).Seconds())
	}

	ca, err := pki.LoadOrCreate(dir.PKI())
	if err != nil {
		return err
	}
	certs, err := issueControlPlaneCerts(ca)
	if err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", cfg.APIPort)

	// The components share ctx; core components get their own so that
	// the apiserver outlives its clients on shutdown and etcd outlives it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := newGroup(cancel)

	// On a warm start the bootstrap RBAC roles and priority classes are
	// already stored, and the two post-start hooks that reconcile them
	// begin with a fixed one-second sleep (wait.Poll): start-up does not
	// wait for them. On a first start it does, since nothing may run
	// before the roles exist.
	var skipReady []string
	if _, err := os.Stat(dir.Kubeconfig()); err == nil {
		skipReady = []string{"poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes"}
	}

	etcdServers := cfg.Datastore.Endpoints
	var etcdStopped <-chan struct{}
	etcdCtx, stopEtcd := context.WithCancel(context.Background())
	defer stopEtcd()
	if len(etcdServers) == 0 {
		url, stopped, err := startEtcd(etcdCtx, dir.Etcd(), dir.EtcdSocket(), dir.EtcdLog())
		if err != nil {
			return err
		}
		etcdServers, etcdStopped = []string{url}, stopped
		step("etcd", "embedded, "+dir.EtcdSocket())
	} else {
		if err := cfg.Datastore.check(ctx); err != nil {
			return err
		}
		step("etcd", "external, "+etcdServers[0])
	}

	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	counter := newRequestCounter()
	apiStopped, err := startAPIServer(apiCtx, apiserverConfig{
		Listener:          apiListener,
		EtcdServers:       etcdServers,
		EtcdCAFile:        cfg.Datastore.CAFile,
		EtcdCertFile:      cfg.Datastore.CertFile,
		EtcdKeyFile:       cfg.Datastore.KeyFile,
		CertFile:          certs.serving.CertFile,
		KeyFile:           certs.serving.KeyFile,
		ClientCAFile:      ca.CertFile(),
		SAKeyFile:         certs.saKey,
		KubeletClientCert: certs.kubeletClient.CertFile,
		KubeletClientKey:  certs.kubeletClient.KeyFile,
		ServiceCIDR:       ServiceCIDR,
		SkipReadyChecks:   skipReady,
		WrapHandler:       counter.wrap,
	}, restConfig(server, ca, certs.admin))
	if err != nil {
		stopAPI()
		return err
	}
	shutdownCore := func() {
		// Clients first, then the apiserver, then etcd, each bounded so the
		// whole stop stays well inside 10 s.
		stopAPI()
		waitOrTimeout(apiStopped, 5*time.Second)
		stopEtcd()
		if etcdStopped != nil {
			waitOrTimeout(etcdStopped, 3*time.Second)
		}
	}
	step("kube-apiserver", server)

	cluster := &Cluster{DataDir: cfg.DataDir, Server: server, CA: ca, Kubeconfig: dir.Kubeconfig(), Mode: cfg.WorkloadControllers, CPU: &CPUProfiler{}, qps: cfg.APIQPS, burst: cfg.APIBurst}
	adminConfig := restConfig(server, ca, certs.admin)
	adminConfig.QPS, adminConfig.Burst = cfg.APIQPS, cfg.APIBurst
	if cluster.admin, err = kubernetes.NewForConfig(adminConfig); err != nil {
		shutdownCore()
		return err
	}
	if err := applyRBAC(ctx, cluster.admin); err != nil {
		shutdownCore()
		return fmt.Errorf("bootstrapping RBAC: %w", err)
	}
	if err := writeKubeconfig(dir.Kubeconfig(), server, ca, certs.admin, userAdmin); err != nil {
		shutdownCore()
		return err
	}
	for _, kc := range []struct {
		path string
		cert *pki.Issued
		user string
	}{
		{certs.kcmKubeconfig, certs.kcm, userControllerManager},
		{certs.schedulerKubeconfig, certs.scheduler, userScheduler},
		{certs.workloadsKubeconfig, certs.workloads, userWorkloadInformers},
	} {
		if err := writeKubeconfig(kc.path, server, ca, kc.cert, kc.user); err != nil {
			shutdownCore()
			return err
		}
	}

	kcmConfig := controllerManagerConfig{
		Kubeconfig:  certs.kcmKubeconfig,
		SAKeyFile:   certs.saKey,
		CAFile:      ca.CertFile(),
		CAKeyFile:   filepath.Join(ca.Dir, "ca.key"),
		ClusterCIDR: ClusterCIDR,
		ServiceCIDR: ServiceCIDR,
		APIQPS:      cfg.APIQPS,
		APIBurst:    cfg.APIBurst,
	}
	g.Go("kube-controller-manager", func() error { return runControllerManager(ctx, kcmConfig) })
	step("kube-controller-manager", "every default controller but the five workload controllers")
	g.Go("kube-scheduler", func() error {
		return runScheduler(ctx, schedulerConfig{Kubeconfig: certs.schedulerKubeconfig, APIQPS: cfg.APIQPS, APIBurst: cfg.APIBurst})
	})
	step("kube-scheduler", "")

	switch cfg.WorkloadControllers {
	case ModeQuartet:
		var names string
		err := withWorkloadLabel(ctx, func(ctx context.Context) (err error) {
			names, err = startWorkloadControllers(ctx, g, cluster)
			return err
		})
		if err != nil {
			cancel()
			g.Wait(5 * time.Second)
			shutdownCore()
			return err
		}
		step("quartet controllers", names)
	case ModeUpstream:
		workloads := kcmConfig
		workloads.Kubeconfig = certs.workloadsKubeconfig
		g.Go("upstream workload controllers", func() error {
			return withWorkloadLabel(ctx, func(ctx context.Context) error { return runUpstreamWorkloadControllers(ctx, workloads) })
		})
		step("upstream controllers", "statefulset, daemonset, job, cronjob, ttl-after-finished (reference mode)")
	case ModeNone:
		step("workload controllers", "none (--workload-controllers none)")
	}

	for _, a := range cfg.Addons {
		detail, run, err := a.Start(ctx, cluster)
		if err != nil {
			cancel()
			g.Wait(5 * time.Second)
			shutdownCore()
			if failure := g.Failure(); failure != nil {
				return failure // the component whose exit cancelled the start
			}
			return fmt.Errorf("%s: %w", a.Name, err)
		}
		if run != nil {
			g.Go(a.Name, run)
		}
		step(a.Name, detail)
	}

	fmt.Fprintf(out, "quartet is ready in %.1fs: export KUBECONFIG=%s (or run `quartet kubectl ...`); Ctrl-C stops it\n",
		time.Since(start).Seconds(), dir.Kubeconfig())

	<-ctx.Done()
	failure := g.Failure()
	fmt.Fprintln(out, "quartet is stopping")
	g.Wait(5 * time.Second)
	shutdownCore()
	if failure != nil {
		return failure
	}
	return nil
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if err := c.Datastore.validate(); err != nil {
		return err
	}
	if c.APIPort < 1 || c.APIPort > 65535 {
		return fmt.Errorf("--api-port %d: want a port between 1 and 65535", c.APIPort)
	}
	switch c.WorkloadControllers {
	case ModeQuartet, ModeUpstream, ModeNone:
	default:
		return fmt.Errorf("--workload-controllers %q: want quartet, upstream or none", c.WorkloadControllers)
	}
	if !(c.APIQPS > 0) || math.IsInf(float64(c.APIQPS), 0) {
		return fmt.Errorf("--api-qps %g: want a number above 0", c.APIQPS)
	}
	if c.APIBurst <= 0 {
		return fmt.Errorf("--api-burst %d: want a number above 0", c.APIBurst)
	}
	return nil
}

type controlPlaneCerts struct {
	serving, admin, kcm, scheduler, kubeletClient, workloads *pki.Issued
	saKey                                                    string
	kcmKubeconfig, schedulerKubeconfig, workloadsKubeconfig  string
}

func issueControlPlaneCerts(ca *pki.Authority) (*controlPlaneCerts, error) {
	var c controlPlaneCerts
	var err error
	if c.serving, err = ca.Issue(pki.Leaf{
		Name: "apiserver", CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(KubernetesServiceIP)},
	}); err != nil {
		return nil, err
	}
	if c.admin, err = issueClient(ca, "admin", userAdmin, "system:masters"); err != nil {
		return nil, err
	}
	if c.kcm, err = issueClient(ca, "controller-manager", userControllerManager); err != nil {
		return nil, err
	}
	if c.scheduler, err = issueClient(ca, "scheduler", userScheduler); err != nil {
		return nil, err
	}
	if c.kubeletClient, err = issueClient(ca, "apiserver-kubelet-client", userKubeletClient, "system:masters"); err != nil {
		return nil, err
	}
	if c.workloads, err = issueClient(ca, "workload-controllers", userWorkloadInformers); err != nil {
		return nil, err
	}
	if c.saKey, err = ca.ServiceAccountKey(); err != nil {
		return nil, err
	}
	c.kcmKubeconfig = filepath.Join(ca.Dir, "controller-manager.kubeconfig")
	c.schedulerKubeconfig = filepath.Join(ca.Dir, "scheduler.kubeconfig")
	c.workloadsKubeconfig = filepath.Join(ca.Dir, "workload-controllers.kubeconfig")
	return &c, nil
}

func waitOrTimeout(ch <-chan struct{}, d time.Duration) {
	select {
	case <-ch:
	case <-time.After(d):
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok {
			b[i] = '-'
		}
	}
	return string(b)
}

// group runs components; the first to fail cancels the rest.
type group struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	failure error
}

func newGroup(cancel context.CancelFunc) *group { return &group{cancel: cancel} }

func (g *group) Go(name string, f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := f()
		g.mu.Lock()
		if err != nil && !errors.Is(err, context.Canceled) && g.failure == nil {
			g.failure = fmt.Errorf("%s: %w", name, err)
		}
		g.mu.Unlock()
		g.cancel()
	}()
}

func (g *group) Failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failure
}

// Wait waits for every component to return, at most d.
func (g *group) Wait(d time.Duration) {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	waitOrTimeout(done, d)
}

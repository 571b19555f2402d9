// Package controlplane builds the control-plane components of `quartet up`:
// embedded etcd (or an external one), upstream kube-apiserver,
// kube-controller-manager and kube-scheduler as libraries, and the workload
// controllers (quartet's own, or upstream's in reference mode); and the
// certificate identities and kubeconfigs every in-process component uses.
// internal/up puts them in order with the rest of the cluster and runs them.
package controlplane

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/etcd"
	"quartet.dev/quartet/internal/pki"
)

// Workload controller modes.
const (
	ModeQuartet  = "quartet"  // quartet's own StatefulSet, DaemonSet, Job, CronJob, TTL controllers
	ModeUpstream = "upstream" // upstream's, from kube-controller-manager: the reference
	ModeNone     = "none"     // neither: a cluster for controllers run elsewhere (`quartet controllers`)
)

// Config is the control plane `quartet up` asks for.
type Config struct {
	Dir                 datadir.Dir
	APIPort             int
	WorkloadControllers string
	// Datastore, when it has endpoints, replaces embedded etcd.
	Datastore etcd.Datastore
	// APIQPS and APIBurst are the client rate limits of every in-process
	// component, workload controllers in both modes alike.
	APIQPS   float32
	APIBurst int
	// ClusterCIDR is the pod range node-ipam carves each node's podCIDR
	// from (the data dir's pod network); "" is the ClusterCIDR constant.
	ClusterCIDR string
	// ServingIPs are more addresses the apiserver's serving certificate
	// names, besides 127.0.0.1 and the kubernetes Service's ClusterIP: the
	// pod network's host address, where pods reach the apiserver through a
	// relay when Services do not route. A certificate already issued in
	// the data dir without them is issued again.
	ServingIPs []net.IP
}

// Validate checks the settings, naming the flags they came from.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("--data-dir must not be empty")
	}
	if err := c.Datastore.Validate(); err != nil {
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

// Network ranges of every quartet cluster.
const (
	ServiceCIDR = "10.96.0.0/16"
	// ClusterCIDR is the pod range of a cluster without one of its own
	// (see Config.ClusterCIDR): a /24 per node, room for 4096 nodes.
	ClusterCIDR   = "10.128.0.0/12"
	ClusterDomain = "cluster.local"
	// KubernetesServiceIP is the first address of ServiceCIDR.
	KubernetesServiceIP = "10.96.0.1"
	// DNSServiceIP is the ClusterIP of kube-dns.
	DNSServiceIP = "10.96.0.10"
)

// Cluster is the control plane: its settings, certificates and listeners,
// the components that run it, and the clients other components use.
type Cluster struct {
	Dir    datadir.Dir
	Server string
	CA     *pki.Authority
	Mode   string
	// CPU profiles the process, attributing samples to the workload
	// controllers by their pprof label.
	CPU *CPUProfiler

	cfg         Config
	certs       *controlPlaneCerts
	apiListener net.Listener
	etcdServers []string
	// warm is a restart on a data dir that has been started before.
	warm bool
	// nodeTokens are the node agents' credentials (NodeClients).
	nodeTokens *nodeTokens

	mu    sync.Mutex
	admin kubernetes.Interface
}

// New loads (or creates) the CA, issues the control plane's certificates
// and binds the API port, so that a port in use is an error before
// anything starts. Nothing runs until the components are started; Close
// releases the port if they never are.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ca, err := pki.LoadOrCreate(cfg.Dir.PKI())
	if err != nil {
		return nil, err
	}
	certs, err := issueControlPlaneCerts(ca, cfg.ServingIPs)
	if err != nil {
		return nil, err
	}
	l, err := listenAPI(cfg.APIPort)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:         cfg.Dir,
		Server:      fmt.Sprintf("https://127.0.0.1:%d", cfg.APIPort),
		CA:          ca,
		Mode:        cfg.WorkloadControllers,
		CPU:         &CPUProfiler{},
		cfg:         cfg,
		certs:       certs,
		apiListener: l,
		etcdServers: cfg.Datastore.Endpoints,
		nodeTokens:  newNodeTokens(),
	}
	// The admin kubeconfig is written once the apiserver has served.
	if _, err := os.Stat(cfg.Dir.Kubeconfig()); err == nil {
		c.warm = true
	}
	return c, nil
}

// Close releases the API port (the apiserver closes it when it stops).
func (c *Cluster) Close() { _ = c.apiListener.Close() } // closed already when the apiserver ran

// ClientFor returns a client authenticated as user (in groups), with the
// control plane's rate limits.
func (c *Cluster) ClientFor(user string, groups ...string) (kubernetes.Interface, *rest.Config, error) {
	file := "client-" + sanitize(user)
	cert, err := issueClient(c.CA, file, user, groups...)
	if err != nil {
		return nil, nil, err
	}
	rc := restConfig(c.Server, c.CA, cert)
	rc.QPS, rc.Burst = c.cfg.APIQPS, c.cfg.APIBurst
	rc.UserAgent = user
	cs, err := kubernetes.NewForConfig(rc)
	return cs, rc, err
}

// Admin returns a cluster-admin client, once the apiserver has started.
func (c *Cluster) Admin() kubernetes.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.admin
}

// User names of quartet's in-process components, for the other components.
const (
	UserNodeAgents  = userNodeAgents
	UserProvisioner = userProvisioner
	UserDNS         = userDNS
	// UserKubeProxy is kube-proxy's identity; the default ClusterRoleBinding
	// system:node-proxier gives it what it reads.
	UserKubeProxy = "system:kube-proxy"
	// UserKubeletClient is the identity the apiserver presents to node agents.
	UserKubeletClient = userKubeletClient
)

type controlPlaneCerts struct {
	serving, admin, kcm, scheduler, kubeletClient, workloads *pki.Issued
	saKey                                                    string
	kcmKubeconfig, schedulerKubeconfig, workloadsKubeconfig  string
}

func issueControlPlaneCerts(ca *pki.Authority, servingIPs []net.IP) (*controlPlaneCerts, error) {
	var c controlPlaneCerts
	var err error
	if c.serving, err = ca.Issue(pki.Leaf{
		Name: "apiserver", CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain},
		IPs:      append([]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(KubernetesServiceIP)}, servingIPs...),
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
	c.kcmKubeconfig = ca.Dir + "/controller-manager.kubeconfig"
	c.schedulerKubeconfig = ca.Dir + "/scheduler.kubeconfig"
	c.workloadsKubeconfig = ca.Dir + "/workload-controllers.kubeconfig"
	return &c, nil
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

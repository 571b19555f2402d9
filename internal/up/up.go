// Package up builds and runs every component of `quartet up`, in order:
// etcd, kube-apiserver, the workload controllers, the pod network, cluster
// DNS, Services (kube-proxy), local-path
// storage, the node agents, the control socket, the web UI,
// kube-controller-manager and kube-scheduler. It owns start-up policy (the
// data dir's checks and lock, the log file, which DNS address to take, the
// nodes added at run time); the CLI parses flags and hands over a Config.
package up

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node"
	"quartet.dev/quartet/internal/node/sandbox"
	"quartet.dev/quartet/internal/storage"
	"quartet.dev/quartet/internal/version"
)

// Config is what `quartet up` asks for.
type Config struct {
	controlplane.Config
	// Nodes are the nodes to run (the ones added with `quartet node add`
	// on an earlier run come back too).
	Nodes []node.NodeSpec
	// Runtime is how containers run: node.RuntimeAuto, RuntimeProcess or
	// RuntimeSim.
	Runtime string
	// DNSAddress is where cluster DNS listens; "" chooses (see dnsAddress).
	DNSAddress string
	// DNSUpstream answers names outside the cluster domain.
	DNSUpstream []string
	// UI serves the web UI on UIAddress (a loopback address; port 0
	// takes a free one).
	UI        bool
	UIAddress string
	// Progress receives the start-up lines, the ready line and what
	// happens to components afterwards.
	Progress io.Writer
}

// Run starts the cluster, prints the ready line once every component is
// ready, and runs until ctx is done or a component it cannot do without
// stops; then it stops everything and returns.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	switch cfg.Runtime {
	case node.RuntimeAuto, node.RuntimeOCI, node.RuntimeProcess, node.RuntimeSim:
	default:
		return fmt.Errorf("--runtime %q: want auto, oci, process or sim", cfg.Runtime)
	}
	out := cfg.Progress
	if out == nil {
		out = io.Discard
	}
	limitMemory(ctx)
	dir := cfg.Dir
	release, err := prepareDataDir(dir, out)
	if err != nil {
		return err
	}
	defer release()

	// The pod range is the data dir's (chosen once, so that clusters side
	// by side do not overlap), whether or not pods get a network this run.
	// Without one (every candidate range taken), pods share the host's
	// network and the pod network's line says why.
	pn := &podNetwork{}
	if pn.plan, pn.planErr = sandbox.Plan(dir.Path()); pn.planErr == nil {
		cfg.ClusterCIDR = pn.plan.ClusterCIDR.String()
		// Pods reach the apiserver there when Services do not route.
		cfg.ServingIPs = []net.IP{pn.plan.HostIP}
	}
	cp, err := controlplane.New(cfg.Config)
	if err != nil {
		return err
	}
	defer cp.Close()
	u := &cluster{cfg: cfg, cp: cp, control: &nodeControl{}, net: pn}
	// Built before anything runs: building it writes to client-go's shared
	// scheme, which every component's clients read.
	provisionerClient, _, err := cp.ClientFor(controlplane.UserProvisioner)
	if err != nil {
		return err
	}
	if u.provisioner, err = storage.New(ctx, storage.Config{Client: provisionerClient, Root: dir.Storage()}); err != nil {
		return err
	}

	r := &component.Runner{Out: out, Ready: func(took time.Duration) {
		fmt.Fprintf(out, "quartet is ready in %.1fs: export KUBECONFIG=%s (or run `quartet kubectl ...`); Ctrl-C stops it\n",
			took.Seconds(), dir.Kubeconfig())
	}}
	return r.Run(ctx, u.components())
}

// prepareDataDir makes the data dir private, locks it and sends the logs
// there, then prints the first line (with what it changed in the dir). The
// returned func releases the lock.
func prepareDataDir(dir datadir.Dir, out io.Writer) (release func(), err error) {
	fixed, err := dir.Prepare()
	if err != nil {
		return nil, err
	}
	if release, err = dir.Lock(); err != nil {
		return nil, err
	}
	if err := setupLogging(dir); err != nil {
		release()
		return nil, err
	}
	fmt.Fprintf(out, "%s, data dir %s, logs in %s\n", version.String(), dir, dir.LogFile())
	for _, f := range fixed {
		fmt.Fprintf(out, "warning: %s\n", f)
	}
	if err := version.Check(); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	}
	return release, nil
}

// components are the components of `quartet up`, in the order they start.
func (u *cluster) components() []component.Component {
	cp := u.cp
	comps := []component.Component{
		cp.Etcd(),
		cp.APIServer(),
		cp.WorkloadControllers(),
		u.network(),
		u.dns(),
		u.services(),
		u.storage(),
		u.nodes(),
		u.controlSocket(),
	}
	if u.cfg.UI {
		comps = append(comps, u.webUI())
	}
	// Last: they start once every post-start hook of the apiserver has
	// finished, which the components above do not need.
	return append(comps, cp.ControllerManager(), cp.Scheduler())
}

// cluster is the state the components of `quartet up` share beyond the
// control plane's.
type cluster struct {
	cfg         Config
	cp          *controlplane.Cluster
	provisioner *storage.Provisioner
	// dnsAddr and uiAddr are where cluster DNS and the web UI listen,
	// once they do: a restart binds the same address.
	dnsAddr, uiAddr string
	control         *nodeControl
	net             *podNetwork
}

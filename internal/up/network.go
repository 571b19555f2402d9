package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/kubeproxy"
	"quartet.dev/quartet/internal/node"
	"quartet.dev/quartet/internal/node/runtime/process"
	"quartet.dev/quartet/internal/node/sandbox"
)

// podNetwork is what the network components share with DNS and the nodes:
// the data dir's pod network (when pods get one) and whether this cluster's
// Services route. The components start in this order: the pod network
// (before cluster DNS, which listens on the network's host address), then
// Services (kube-proxy, after DNS), then the nodes, which read it.
type podNetwork struct {
	plan    *sandbox.Network // planned before anything starts (the cluster CIDR)
	planErr error            // why there is no plan

	// Set by the components as they start.
	mgr *sandbox.Manager // nil: pods share the host's network
	why string           // why they do ("" when nothing runs: --runtime sim)
	// routed: this cluster's kube-proxy routes Services.
	routed bool
	// relay is where pods reach the apiserver directly (the bridge
	// address and the API port), "" without a pod network.
	relay string
	// nodes counts the node hosts running; the network stops after them.
	nodes sync.WaitGroup
}

// hostIP is the host's address on the pod bridge, or "" without a network.
func (n *podNetwork) hostIP() string {
	if n.mgr == nil {
		return ""
	}
	return n.plan.HostIP.String()
}

// unavailable says why pods cannot get a network of their own here.
func unavailable() string {
	if ok, why := process.Isolation(); !ok {
		return why
	}
	if err := sandbox.Available(); err != nil {
		return "no network namespaces: " + err.Error()
	}
	return ""
}

// network starts the pod network: the bridge with the host's address,
// forwarding, the egress masquerade, after removing what a killed run left.
// It stops once the node agents have (or when its stop timeout nears),
// removing every sandbox, the bridge and its tables.
func (u *cluster) network() component.Component {
	const stopTimeout = 40 * time.Second
	n := u.net
	return component.Component{Name: "pod network", StopTimeout: stopTimeout, Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
		if u.cfg.Runtime == node.RuntimeSim {
			return "none (--runtime sim runs no process)", nil, nil
		}
		none := func(why string) (string, func() error, error) {
			n.why = why
			return "none: pods share the host's network (" + why + ")", nil, nil
		}
		if why := unavailable(); why != "" {
			return none(why)
		}
		if n.planErr != nil {
			return none(n.planErr.Error())
		}
		// Another cluster of the machine may hold the range (two started
		// at once chose the same): this one runs without a pod network.
		mgr, err := sandbox.New(sandbox.Config{Network: n.plan})
		if err != nil {
			return none(err.Error())
		}
		if err := mgr.Start(ctx); err != nil {
			mgr.Stop(context.WithoutCancel(ctx))
			return none(err.Error())
		}
		n.mgr = mgr
		wait := func() error {
			<-ctx.Done()
			nodesStopped := make(chan struct{})
			go func() { n.nodes.Wait(); close(nodesStopped) }()
			select {
			case <-nodesStopped:
			case <-time.After(stopTimeout - 3*time.Second):
			}
			mgr.Stop(context.WithoutCancel(ctx))
			return nil
		}
		detail := fmt.Sprintf("%s on bridge %s, host %s", n.plan.ClusterCIDR, n.plan.Bridge, n.plan.HostIP)
		if conf := mgr.ConfFile(); !strings.HasSuffix(conf, "/"+sandbox.DefaultConflist) {
			detail += ", CNI " + conf
		}
		for _, note := range mgr.Notes() {
			detail += "; " + note
		}
		return detail, wait, nil
	}}
}

// dnsListenAddress is where cluster DNS listens by default with a pod
// network: port 53 on the host's bridge address, which pods, hostNetwork
// pods and the host all reach.
func (n *podNetwork) dnsListenAddress() string {
	if ip := n.hostIP(); ip != "" {
		return net.JoinHostPort(ip, "53")
	}
	return ""
}

// publishDNS makes the bridge address the kube-dns Service's endpoint when
// DNS listens there, so its ClusterIP routes.
func (n *podNetwork) publishDNS(ctx context.Context, cp *controlplane.Cluster, bound string) error {
	host, port, err := net.SplitHostPort(bound)
	if err != nil || n.hostIP() == "" || host != n.hostIP() || port != "53" {
		return kubeproxy.UnpublishEndpoints(ctx, cp.Admin(), "kube-system", "kube-dns")
	}
	return kubeproxy.PublishEndpoints(ctx, cp.Admin(), "kube-system", "kube-dns", net.ParseIP(host), []discoveryv1.EndpointPort{
		{Name: new("dns"), Port: new(int32(53)), Protocol: new(v1.ProtocolUDP)},
		{Name: new("dns-tcp"), Port: new(int32(53)), Protocol: new(v1.ProtocolTCP)},
	})
}

// services runs kube-proxy for this cluster (one per machine), and
// publishes the apiserver on the bridge address as the kubernetes
// Service's endpoint. Without it ClusterIPs and NodePorts do not route,
// which the start-up line says, and everything else works: with a pod
// network, pods then reach the apiserver at the bridge address directly
// (their KUBERNETES_SERVICE_HOST and _PORT), which its certificate names.
func (u *cluster) services() component.Component {
	n := u.net
	return component.Component{Name: "Services", Start: func(ctx context.Context, progress component.Progress) (string, func() error, error) {
		admin := u.cp.Admin()
		if n.mgr == nil {
			why := "no pod network"
			if n.why != "" {
				why = "pods share the host's network"
			}
			_ = kubeproxy.UnpublishEndpoints(ctx, admin, "default", "kubernetes")
			return "ClusterIPs and NodePorts do not route: " + why, nil, nil
		}
		// Everything below ends with the component, also when it stops by
		// itself, so that a restart can bind the relay again.
		ctx, cancel := context.WithCancel(ctx)
		// The apiserver listens on 127.0.0.1: a relay puts it on the
		// bridge address, the kubernetes Service's endpoint.
		relay := net.JoinHostPort(n.hostIP(), strconv.Itoa(u.cfg.APIPort))
		_, relayed, err := kubeproxy.Forward(ctx, relay, net.JoinHostPort("127.0.0.1", strconv.Itoa(u.cfg.APIPort)))
		if err != nil {
			cancel()
			return "", nil, fmt.Errorf("relaying the apiserver to the pod network: %w", err)
		}
		n.relay = relay
		stop := func() error {
			cancel()
			<-relayed
			return nil
		}
		fail := func(err error) (string, func() error, error) {
			_ = stop()
			return "", nil, err
		}
		// Without kube-proxy the relay stays, for pods to reach the
		// apiserver at its address.
		unrouted := func(why string) (string, func() error, error) {
			klog.FromContext(ctx).Info("Services do not route", "reason", why)
			_ = kubeproxy.UnpublishEndpoints(context.WithoutCancel(ctx), admin, "default", "kubernetes")
			return "ClusterIPs and NodePorts do not route: " + why + "; pods reach the apiserver at " + relay,
				func() error { <-ctx.Done(); return stop() }, nil
		}
		if err := kubeproxy.Available(); err != nil {
			return unrouted(err.Error())
		}
		err = controlplane.RetryAPI(ctx, progress, "the kubernetes Service's endpoint", func() error {
			return kubeproxy.PublishEndpoints(ctx, admin, "default", "kubernetes", n.plan.HostIP,
				[]discoveryv1.EndpointPort{{Name: new("https"), Port: new(int32(u.cfg.APIPort)), Protocol: new(v1.ProtocolTCP)}})
		})
		if err != nil {
			return fail(err)
		}
		client, _, err := u.cp.ClientFor(controlplane.UserKubeProxy)
		if err != nil {
			return fail(err)
		}
		p, err := kubeproxy.Start(ctx, kubeproxy.Config{Client: client, ClusterCIDR: n.plan.ClusterCIDR.String(),
			NodeIP: n.plan.HostIP, Owner: u.cfg.Dir.Path()})
		var busy *kubeproxy.BusyError
		if errors.As(err, &busy) {
			return unrouted(busy.Error())
		}
		if err != nil {
			return fail(err)
		}
		n.routed = true
		wait := func() error {
			<-p.Done()
			return stop()
		}
		return "kube-proxy (nftables): ClusterIPs, NodePorts on every address but 127.0.0.1", wait, nil
	}}
}

// nodeConfig is what the node agents need of the pod network.
func (n *podNetwork) nodeConfig(cfg *node.HostConfig) {
	if n.mgr == nil {
		cfg.NoNetwork = n.why
		return
	}
	cfg.Network = n.mgr
	cfg.NodeIP = n.hostIP()
	cfg.PodDNS = ""
	if host, port, err := net.SplitHostPort(cfg.DNSAddress); err == nil && host == n.hostIP() && port == "53" {
		cfg.PodDNS = host
		if n.routed {
			cfg.PodDNS = controlplane.DNSServiceIP
		}
	}
	switch {
	case n.routed:
		cfg.KubernetesService = net.JoinHostPort(controlplane.KubernetesServiceIP, "443")
	case n.relay != "":
		cfg.KubernetesService = n.relay
	}
}

// nodeIPs are the addresses the kubelet API's certificate names.
func (n *podNetwork) nodeIPs() []net.IP {
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	if ip := n.hostIP(); ip != "" {
		ips = append(ips, net.ParseIP(ip))
	}
	return ips
}

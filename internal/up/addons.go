package up

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/cronnext"
	"quartet.dev/quartet/internal/dns"
	"quartet.dev/quartet/internal/ui"
)

// dns runs cluster DNS and publishes it as the kube-dns Service.
func (u *cluster) dns() component.Component {
	return component.Component{Name: "cluster DNS", Start: func(ctx context.Context, progress component.Progress) (string, func() error, error) {
		client, _, err := u.cp.ClientFor(controlplane.UserDNS)
		if err != nil {
			return "", nil, err
		}
		cfg := dns.Config{Client: client, Address: u.cfg.DNSAddress, ClusterDomain: controlplane.ClusterDomain, Upstream: u.cfg.DNSUpstream}
		var srv *dns.Server
		switch {
		case u.dnsAddr != "":
			// A restart takes the address the first start bound.
			cfg.Address = u.dnsAddr
			srv, err = dns.Start(ctx, cfg)
		case cfg.Address == "":
			// resolv.conf cannot name a port, so process pods reach
			// cluster DNS only on port 53: as root, take port 53 on the
			// pod network's host address, or on a loopback address of this
			// data dir's own, so clusters side by side do not collide;
			// otherwise any free port.
			cfg.Address = "127.0.0.1:0"
			if a := u.net.dnsListenAddress(); a != "" {
				cfg.Address = a
			} else if os.Geteuid() == 0 {
				cfg.Address = loopbackFor(u.cfg.Dir.Path()) + ":53"
			}
			if srv, err = dns.Start(ctx, cfg); err != nil && cfg.Address != "127.0.0.1:0" {
				cfg.Address = "127.0.0.1:0"
				srv, err = dns.Start(ctx, cfg)
			}
		default:
			srv, err = dns.Start(ctx, cfg)
		}
		if err != nil {
			return "", nil, err
		}
		err = controlplane.RetryAPI(ctx, progress, "the kube-dns Service", func() error {
			return dns.EnsureKubeDNSService(ctx, u.cp.Admin(), controlplane.DNSServiceIP)
		})
		if err != nil {
			return "", nil, err
		}
		err = controlplane.RetryAPI(ctx, progress, "kube-dns's endpoint", func() error {
			return u.net.publishDNS(ctx, u.cp, srv.Addr())
		})
		if err != nil {
			return "", nil, err
		}
		u.dnsAddr = srv.Addr()
		wait := func() error {
			<-srv.Done()
			return srv.Err()
		}
		return srv.Addr() + " (kube-dns " + controlplane.DNSServiceIP + ")", wait, nil
	}}
}

// loopbackFor picks a stable address in 127.1.0.0/16 for a data dir.
func loopbackFor(dataDir string) string {
	h := fnv.New32a()
	h.Write([]byte(dataDir))
	v := h.Sum32()
	return fmt.Sprintf("127.1.%d.%d", (v>>8)%256, 1+v%254)
}

// storage runs the local-path provisioner. The provisioner library cannot
// be built twice in one process (see storage.New), so if it ever stopped,
// quartet would say so and run on without it.
func (u *cluster) storage() component.Component {
	return component.Component{Name: "local-path storage", Policy: component.Report, Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
		ready := make(chan struct{})
		errc := make(chan error, 1)
		go func() { errc <- u.provisioner.Run(ctx, func() { close(ready) }) }()
		select {
		case <-ready:
		case err := <-errc:
			if err == nil {
				err = ctx.Err()
			}
			return "", nil, err
		}
		return "StorageClasses local-path (default), local-path-retain", func() error { return <-errc }, nil
	}}
}

// controlSocket serves the control socket, through which `quartet node`
// reaches the node agents and benchmarks profile the process.
func (u *cluster) controlSocket() component.Component {
	return component.Component{Name: "control socket", Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
		socket := u.cfg.Dir.ControlSocket()
		done, err := control.Serve(ctx, socket, u.control, u.cp.CPU)
		if err != nil {
			return "", nil, err
		}
		return socket, func() error { return <-done }, nil
	}}
}

// webUI serves the web UI as the read-only identity ui.User and prints its
// one-time login URL.
func (u *cluster) webUI() component.Component {
	return component.Component{Name: "web UI", Start: func(ctx context.Context, progress component.Progress) (string, func() error, error) {
		err := controlplane.RetryAPI(ctx, progress, "the UI's role", func() error { return ui.EnsureRBAC(ctx, u.cp.Admin()) })
		if err != nil {
			return "", nil, err
		}
		client, _, err := u.cp.ClientFor(ui.User)
		if err != nil {
			return "", nil, err
		}
		address := u.cfg.UIAddress
		if u.uiAddr != "" {
			address = u.uiAddr // a restart keeps the address the first start bound
		}
		srv, err := ui.Start(ctx, ui.Config{Client: client, Address: address, ControllerZone: cronnext.MachineZone()})
		if err != nil {
			return "", nil, err
		}
		u.uiAddr = srv.Addr()
		wait := func() error {
			<-srv.Done()
			return srv.Err()
		}
		return srv.LoginURL() + " (works once)", wait, nil
	}}
}

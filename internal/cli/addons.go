package cli

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"

	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/dns"
	"quartet.dev/quartet/internal/storage"
)

// dnsAddon runs cluster DNS on a loopback address and publishes it as the
// kube-dns Service. dnsAddr receives the bound address for later addons.
func dnsAddon(listen string, upstream []string, dnsAddr *string) controlplane.Addon {
	return controlplane.Addon{
		Name: "cluster DNS",
		Start: func(ctx context.Context, cp *controlplane.Cluster) (string, func() error, error) {
			client, _, err := cp.ClientFor(controlplane.UserDNS)
			if err != nil {
				return "", nil, err
			}
			cfg := dns.Config{Client: client, Address: listen, ClusterDomain: controlplane.ClusterDomain, Upstream: upstream}
			var srv *dns.Server
			if listen == "" {
				// resolv.conf cannot name a port, so process pods reach
				// cluster DNS only on port 53: as root, take port 53 on a
				// loopback address of this data dir's own, so clusters side
				// by side do not collide; otherwise any free port.
				cfg.Address = "127.0.0.1:0"
				if os.Geteuid() == 0 {
					cfg.Address = loopbackFor(cp.DataDir) + ":53"
				}
				if srv, err = dns.Start(ctx, cfg); err != nil && cfg.Address != "127.0.0.1:0" {
					cfg.Address = "127.0.0.1:0"
					srv, err = dns.Start(ctx, cfg)
				}
			} else {
				srv, err = dns.Start(ctx, cfg)
			}
			if err != nil {
				return "", nil, err
			}
			if err := dns.EnsureKubeDNSService(ctx, cp.Admin(), controlplane.DNSServiceIP); err != nil {
				return "", nil, fmt.Errorf("kube-dns Service: %w", err)
			}
			*dnsAddr = srv.Addr()
			run := func() error {
				<-srv.Done()
				return srv.Err()
			}
			return srv.Addr() + " (kube-dns " + controlplane.DNSServiceIP + ")", run, nil
		},
	}
}

// loopbackFor picks a stable address in 127.1.0.0/16 for a data dir.
func loopbackFor(dataDir string) string {
	h := fnv.New32a()
	h.Write([]byte(dataDir))
	v := h.Sum32()
	return fmt.Sprintf("127.1.%d.%d", (v>>8)%256, 1+v%254)
}

// storageAddon runs the local-path provisioner.
func storageAddon() controlplane.Addon {
	return controlplane.Addon{
		Name: "local-path storage",
		Start: func(ctx context.Context, cp *controlplane.Cluster) (string, func() error, error) {
			client, _, err := cp.ClientFor(controlplane.UserProvisioner)
			if err != nil {
				return "", nil, err
			}
			root := datadir.Dir(cp.DataDir).Storage()
			ready := make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				errc <- storage.Run(ctx, storage.Config{Client: client, Root: root}, func() { close(ready) })
			}()
			select {
			case <-ready:
			case err := <-errc:
				if err == nil {
					err = ctx.Err()
				}
				return "", nil, err
			}
			run := func() error { return <-errc }
			return "StorageClasses local-path (default), local-path-retain", run, nil
		},
	}
}

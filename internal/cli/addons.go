package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"quartet.dev/quartet/internal/controlplane"
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
			srv, err := dns.Start(ctx, dns.Config{Client: client, Address: listen, ClusterDomain: controlplane.ClusterDomain, Upstream: upstream})
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

// storageAddon runs the local-path provisioner.
func storageAddon() controlplane.Addon {
	return controlplane.Addon{
		Name: "local-path storage",
		Start: func(ctx context.Context, cp *controlplane.Cluster) (string, func() error, error) {
			client, _, err := cp.ClientFor(controlplane.UserProvisioner)
			if err != nil {
				return "", nil, err
			}
			root := filepath.Join(cp.DataDir, "storage")
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

package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd starts the embedded etcd member in dir. Its only listener is the
// unix socket at socket, inside the data dir (mode 0700), so only the user
// running quartet (and root) can reach etcd, its metrics and its health
// endpoint; a single member needs no peer listener. It returns the client URL
// once the member serves. The member stops when ctx is done; stopped is closed
// once it has.
func startEtcd(ctx context.Context, dir, socket, logFile string) (clientURL string, stopped <-chan struct{}, err error) {
	cu := url.URL{Scheme: "unix", Path: socket}
	// The member's peer URL is recorded in its membership, and a
	// single-member cluster never dials it: nothing listens there.
	pu, _ := url.Parse("http://localhost:2380")

	cfg := embed.NewConfig()
	cfg.Name = "quartet"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = nil
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = fmt.Sprintf("quartet=%s", pu)
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{logFile}
	cfg.EnableGRPCGateway = false
	// A single-member cluster on one machine: compact history hourly and keep
	// the backend quota at 8 GiB so long-running clusters do not fill up.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	cfg.QuotaBackendBytes = 8 << 30

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("starting etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return "", nil, fmt.Errorf("etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return "", nil, errors.New("etcd did not become ready within 60s")
	case <-ctx.Done():
		e.Close()
		return "", nil, ctx.Err()
	}
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		e.Close()
		close(done)
	}()
	return cu.String(), done, nil
}

// Datastore is an external etcd cluster.
type Datastore struct {
	Endpoints []string
	// CAFile verifies the servers' certificates (default: the system's
	// roots); CertFile and KeyFile are quartet's client certificate, for
	// clusters that require one.
	CAFile, CertFile, KeyFile string
}

func (d *Datastore) validate() error {
	if len(d.Endpoints) == 0 {
		if d.CAFile != "" || d.CertFile != "" || d.KeyFile != "" {
			return errors.New("--datastore-cafile, --datastore-certfile and --datastore-keyfile need --datastore-endpoint")
		}
		return nil
	}
	secure := 0
	for _, ep := range d.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--datastore-endpoint %q: want http(s)://host:port", ep)
		}
		if u.Scheme == "https" {
			secure++
		}
	}
	tlsFiles := d.CAFile != "" || d.CertFile != "" || d.KeyFile != ""
	if tlsFiles && secure != len(d.Endpoints) {
		return fmt.Errorf("--datastore-endpoint %s: the TLS files need https:// endpoints", strings.Join(d.Endpoints, ","))
	}
	if (d.CertFile == "") != (d.KeyFile == "") {
		return errors.New("--datastore-certfile and --datastore-keyfile go together")
	}
	for flag, path := range map[string]string{"--datastore-cafile": d.CAFile, "--datastore-certfile": d.CertFile, "--datastore-keyfile": d.KeyFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	return nil
}

// tlsConfig is the client TLS of the external datastore, nil for http.
func (d *Datastore) tlsConfig() (*tls.Config, error) {
	if !strings.HasPrefix(d.Endpoints[0], "https://") {
		return nil, nil
	}
	info := transport.TLSInfo{TrustedCAFile: d.CAFile, CertFile: d.CertFile, KeyFile: d.KeyFile}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--datastore-cafile, --datastore-certfile, --datastore-keyfile: %w", err)
	}
	return cfg, nil
}

// check makes sure an external etcd answers before the apiserver is pointed
// at it, so an unreachable endpoint or a refused certificate is a clear
// error, not a hang.
func (d *Datastore) check(ctx context.Context) error {
	tc, err := d.tlsConfig()
	if err != nil {
		return err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: d.Endpoints, DialTimeout: 3 * time.Second, TLS: tc, Logger: nopZap()})
	if err != nil {
		return fmt.Errorf("--datastore-endpoint %s: %w", strings.Join(d.Endpoints, ","), err)
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(cctx, d.Endpoints[0]); err != nil {
		return fmt.Errorf("--datastore-endpoint %s is not reachable: %w", strings.Join(d.Endpoints, ","), err)
	}
	return nil
}

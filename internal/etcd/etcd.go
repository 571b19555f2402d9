// Package etcd runs quartet's embedded etcd member, reachable only through a
// unix socket in the data dir, and checks an external etcd cluster before
// the apiserver is pointed at it.
package etcd

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
	"go.uber.org/zap"
)

// Member is the embedded etcd member.
type Member struct {
	// Dir holds the member's data.
	Dir string
	// Socket is the member's only listener: a unix socket that must lie in
	// a directory only quartet's user can enter, so that only that user
	// (and root) reaches etcd, its metrics and its health endpoint.
	Socket string
	// LogFile receives etcd's own log (errors only).
	LogFile string
	// Reclaimed is what the last Start gave back to the disk by
	// defragmenting the member's database, in bytes (0: it did not).
	Reclaimed int64
}

// A start defragments the database when at least defragMinFree bytes and
// half of the file are free pages. The apiserver compacts etcd's history
// every five minutes, which frees pages inside the file but never shrinks
// it: after a burst of objects (a Job of 100,000 pods, say) the file keeps
// its largest size. Defragmenting blocks the member, so it is done before
// anything uses it, as k3s does at start.
const defragMinFree = 64 << 20

// ClientURL is the URL clients dial.
func (m *Member) ClientURL() string { return "unix://" + m.Socket }

// Start starts the member and returns once it serves, reporting through
// progress while it loads a large data dir. The member runs until ctx is
// done; wait returns when it has stopped, with the reason when it stopped by
// itself.
func (m *Member) Start(ctx context.Context, progress func(format string, args ...any)) (wait func() error, err error) {
	cu := url.URL{Scheme: "unix", Path: m.Socket}
	// The member's peer URL is recorded in its membership; a single-member
	// cluster never dials it, and nothing listens there.
	pu, _ := url.Parse("http://localhost:2380")

	cfg := embed.NewConfig()
	cfg.Name = "quartet"
	cfg.Dir = m.Dir
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = nil
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = fmt.Sprintf("quartet=%s", pu)
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{m.LogFile}
	cfg.EnableGRPCGateway = false
	// A single-member cluster on one machine: compact history hourly and keep
	// the backend quota at 8 GiB so long-running clusters do not fill up.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	cfg.QuotaBackendBytes = 8 << 30

	began := time.Now()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd in %s: %w", m.Dir, err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ready := false; !ready; {
		select {
		case <-e.Server.ReadyNotify():
			ready = true
		case err := <-e.Err():
			e.Close()
			return nil, fmt.Errorf("etcd failed: %w", err)
		case <-tick.C:
			progress("loading %s (%s)", m.Dir, time.Since(began).Round(time.Second))
		case <-ctx.Done():
			e.Close()
			return nil, ctx.Err()
		}
	}
	if err := m.defragment(e, progress); err != nil {
		e.Close()
		return nil, err
	}
	return func() error {
		defer e.Close()
		select {
		case <-ctx.Done():
			return nil
		case err := <-e.Err():
			return err
		case <-e.Server.StopNotify():
			return errors.New("the etcd server stopped")
		}
	}, nil
}

// defragment rewrites the member's database without its free pages when
// they are many (see defragMinFree).
func (m *Member) defragment(e *embed.Etcd, progress func(format string, args ...any)) error {
	m.Reclaimed = 0
	b := e.Server.Backend()
	size, inUse := b.Size(), b.SizeInUse()
	if free := size - inUse; free < defragMinFree || free*2 < size {
		return nil
	}
	progress("defragmenting its database (%d MB, %d MB in use)", size>>20, inUse>>20)
	if err := e.Server.Defragment(); err != nil {
		return fmt.Errorf("defragmenting etcd in %s: %w", m.Dir, err)
	}
	m.Reclaimed = size - b.Size()
	return nil
}

// Datastore is an external etcd cluster.
type Datastore struct {
	Endpoints []string
	// CAFile verifies the servers' certificates (default: the system's
	// roots); CertFile and KeyFile are quartet's client certificate, for
	// clusters that require one.
	CAFile, CertFile, KeyFile string
}

// Validate checks the endpoints and the TLS files, naming the flags.
func (d *Datastore) Validate() error {
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

// Check makes sure an external etcd answers before the apiserver is pointed
// at it, so an unreachable endpoint or a refused certificate is a clear
// error, not a hang.
func (d *Datastore) Check(ctx context.Context) error {
	tc, err := d.tlsConfig()
	if err != nil {
		return err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: d.Endpoints, DialTimeout: 3 * time.Second, TLS: tc, Logger: zap.NewNop()})
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

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
	"k8s.io/klog/v2"
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
	// DefragEvery is how often the running member checks whether its
	// database is worth defragmenting (default DefragEvery).
	DefragEvery time.Duration
}

// The database is defragmented when at least defragMinFree bytes and half
// of the file are free pages: at start, before anything uses it (as k3s
// does), and while it runs, checked every DefragEvery. The apiserver
// compacts etcd's history every five minutes, which frees pages inside the
// file but never shrinks it: after a burst of objects (a Job of 100,000
// pods, say) the file would keep its largest size. Defragmenting blocks
// every read and write of the member while it rewrites the file (about a
// second per few hundred MB in use), so a running member does it only when
// the file is at least twice what it holds, and logs how long it took.
const (
	defragMinFree = 64 << 20
	DefragEvery   = 10 * time.Minute
)

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
	d, err := m.defragment(e, func(size, inUse int64) {
		progress("defragmenting its database (%d MB, %d MB in use)", size>>20, inUse>>20)
	})
	if err != nil {
		e.Close()
		return nil, err
	}
	m.Reclaimed = 0
	if d != nil {
		m.Reclaimed = d.Before - d.After
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		m.defragWhileRunning(ctx, e, stop)
	}()
	return func() error {
		defer e.Close()
		defer func() { close(stop); <-stopped }() // a defragmentation under way ends first
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

// Defrag is one defragmentation: the database file's size before and
// after, and how long the member was blocked.
type Defrag struct {
	Before, After int64
	Took          time.Duration
}

// defragment rewrites the member's database without its free pages when
// they are many (see defragMinFree), calling starting first; it returns
// nil when they are not.
func (m *Member) defragment(e *embed.Etcd, starting func(size, inUse int64)) (*Defrag, error) {
	b := e.Server.Backend()
	size, inUse := b.Size(), b.SizeInUse()
	if free := size - inUse; free < defragMinFree || free*2 < size {
		return nil, nil
	}
	starting(size, inUse)
	t0 := time.Now()
	if err := e.Server.Defragment(); err != nil {
		return nil, fmt.Errorf("defragmenting etcd in %s: %w", m.Dir, err)
	}
	return &Defrag{Before: size, After: b.Size(), Took: time.Since(t0)}, nil
}

// defragWhileRunning checks every DefragEvery whether the database is worth
// defragmenting and does it, logging each one with how long etcd was
// blocked, until stop is closed or ctx is done.
func (m *Member) defragWhileRunning(ctx context.Context, e *embed.Etcd, stop <-chan struct{}) {
	every := m.DefragEvery
	if every <= 0 {
		every = DefragEvery
	}
	logger := klog.FromContext(ctx).WithName("etcd")
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-e.Server.StopNotify():
			return
		case <-tick.C:
		}
		d, err := m.defragment(e, func(size, inUse int64) {
			logger.Info("Defragmenting the database: reads and writes wait until it is done", "sizeMB", size>>20, "inUseMB", inUse>>20)
		})
		switch {
		case err != nil:
			logger.Error(err, "Defragmentation failed")
		case d != nil:
			logger.Info("Defragmented the database", "beforeMB", d.Before>>20, "afterMB", d.After>>20, "took", d.Took.Round(time.Millisecond))
		}
	}
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

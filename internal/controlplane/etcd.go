package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd starts the embedded etcd member in dir, listening on loopback
// ports only, and returns its client URL once it serves. The member stops when
// ctx is done; stopped is closed once it has.
func startEtcd(ctx context.Context, dir, logFile string) (clientURL string, stopped <-chan struct{}, err error) {
	clientPort, err := freePort()
	if err != nil {
		return "", nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))

	cfg := embed.NewConfig()
	cfg.Name = "quartet"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
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

// checkDatastore makes sure an external etcd answers before the apiserver is
// pointed at it, so an unreachable endpoint is a clear error, not a hang.
func checkDatastore(ctx context.Context, endpoints []string) error {
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--datastore-endpoint %q: want http(s)://host:port", ep)
		}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 3 * time.Second, Logger: nopZap()})
	if err != nil {
		return fmt.Errorf("--datastore-endpoint %s: %w", strings.Join(endpoints, ","), err)
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(cctx, endpoints[0]); err != nil {
		return fmt.Errorf("--datastore-endpoint %s is not reachable: %w", strings.Join(endpoints, ","), err)
	}
	return nil
}

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/pki"
	"quartet.dev/quartet/test/cluster"
)

// TestEmbeddedEtcdOnlyOnSocket checks that embedded etcd has no TCP
// listener: quartet listens on the API port, cluster DNS and the web UI
// only, and etcd answers on the unix socket in the data dir.
func TestEmbeddedEtcdOnlyOnSocket(t *testing.T) {
	dns, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ui, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, cluster.Options{Args: append(noNodes(), "--dns-address=127.0.0.1:"+itoa(dns), "--ui-address=127.0.0.1:"+itoa(ui))})
	got, err := cluster.ListeningTCP(c.Pid())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"127.0.0.1:" + itoa(c.APIPort), "127.0.0.1:" + itoa(dns), "127.0.0.1:" + itoa(ui)}
	if m := podNetworkHost.FindStringSubmatch(c.Output.String()); m != nil {
		// With a pod network, the kubernetes Service's endpoint: a relay of
		// the API port on the bridge's host address.
		want = append(want, m[1]+":"+itoa(c.APIPort))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("quartet listens on TCP %v, want the API port (and its relay on the pod network), DNS and the web UI only %v", got, want)
	}
	sock := datadir.Dir(c.DataDir).EtcdSocket()
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + sock}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := cl.Get(ctx, "/registry/namespaces/default"); err != nil || len(res.Kvs) != 1 {
		t.Errorf("etcd on %s: %v %v, want the default namespace", sock, res, err)
	}
}

// TestExternalDatastoreTLS runs quartet on an external etcd that requires a
// client certificate.
func TestExternalDatastoreTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(pki.Leaf{Name: "etcd-server", CommonName: "etcd", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(pki.Leaf{Name: "etcd-client", CommonName: "quartet", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint := startTLSEtcd(t, filepath.Join(dir, "etcd"), ca.CertFile(), server)

	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	free, _ := cluster.FreePort()
	tlsFlags := []string{"--datastore-endpoint", endpoint, "--datastore-cafile", ca.CertFile()}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no client certificate": {tlsFlags, "is not reachable"},
		"key without cert":      {append(tlsFlags, "--datastore-keyfile", client.KeyFile), "--datastore-certfile and --datastore-keyfile go together"},
		"TLS files over http":   {[]string{"--datastore-endpoint", "http://127.0.0.1:1", "--datastore-cafile", ca.CertFile()}, "the TLS files need https:// endpoints"},
		"TLS files, no etcd":    {[]string{"--datastore-cafile", ca.CertFile()}, "need --datastore-endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := runBinary(bin, append([]string{"up", "--data-dir", t.TempDir(), "--api-port", itoa(free), "--nodes=0"}, tc.args...)...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("quartet up %v: %v, want an error with %q:\n%s", tc.args, err, tc.want, out)
			}
		})
	}

	c := start(t, cluster.Options{Args: append(noNodes(), append(tlsFlags, "--datastore-certfile", client.CertFile, "--datastore-keyfile", client.KeyFile)...)})
	if !strings.Contains(c.Output.String(), "external, "+endpoint) {
		t.Errorf("the start does not name the external etcd:\n%s", c.Output.String())
	}
	kubectl(t, c, "", "create", "namespace", "on-external-etcd")
	tc, err := transport.TLSInfo{TrustedCAFile: ca.CertFile(), CertFile: client.CertFile, KeyFile: client.KeyFile}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := cl.Get(ctx, "/registry/namespaces/on-external-etcd"); err != nil || len(res.Kvs) != 1 {
		t.Errorf("the namespace is not in the external etcd: %v %v", res, err)
	}
}

// startTLSEtcd runs an etcd member in this test process that serves
// https on a free loopback port and requires a client certificate from ca.
func startTLSEtcd(t *testing.T, dir, caFile string, server *pki.Issued) string {
	t.Helper()
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cu, _ := url.Parse(fmt.Sprintf("https://127.0.0.1:%d", port))
	pu, _ := url.Parse("http://localhost:2380")
	cfg := embed.NewConfig()
	cfg.Name = "external"
	cfg.Dir = dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = nil, []url.URL{*pu}
	cfg.InitialCluster = "external=" + pu.String()
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: server.CertFile, KeyFile: server.KeyFile, TrustedCAFile: caFile, ClientCertAuth: true}
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		t.Fatal("the external etcd did not start")
	}
	return cu.String()
}

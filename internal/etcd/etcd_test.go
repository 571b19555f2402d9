package etcd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestMemberServesOnSocketAndRestarts(t *testing.T) {
	dir := t.TempDir()
	m := &Member{Dir: filepath.Join(dir, "etcd"), Socket: filepath.Join(dir, "etcd.sock"), LogFile: filepath.Join(dir, "etcd.log")}
	run := func(f func(c *clientv3.Client)) {
		ctx, cancel := context.WithCancel(context.Background())
		wait, err := m.Start(ctx, func(string, ...any) {})
		if err != nil {
			t.Fatal(err)
		}
		stopped := make(chan error)
		go func() { stopped <- wait() }()
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		f(c)
		c.Close()
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("a stop on purpose returned %v", err)
		}
	}
	ctx := context.Background()
	run(func(c *clientv3.Client) {
		if _, err := c.Put(ctx, "/k", "v"); err != nil {
			t.Fatal(err)
		}
	})
	// The same member again, as after a restart of the component or of quartet.
	run(func(c *clientv3.Client) {
		res, err := c.Get(ctx, "/k")
		if err != nil || len(res.Kvs) != 1 || string(res.Kvs[0].Value) != "v" {
			t.Fatalf("after a restart: %v %v", res, err)
		}
	})
}

func TestDatastoreValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		d    Datastore
		want string
	}{
		"none":           {Datastore{}, ""},
		"http":           {Datastore{Endpoints: []string{"http://10.0.0.1:2379"}}, ""},
		"no scheme":      {Datastore{Endpoints: []string{"10.0.0.1:2379"}}, `--datastore-endpoint "10.0.0.1:2379": want http(s)://host:port`},
		"tls over http":  {Datastore{Endpoints: []string{"http://a:1"}, CAFile: "/etc/hostname"}, "the TLS files need https:// endpoints"},
		"key, no cert":   {Datastore{Endpoints: []string{"https://a:1"}, KeyFile: "/etc/hostname"}, "--datastore-certfile and --datastore-keyfile go together"},
		"missing file":   {Datastore{Endpoints: []string{"https://a:1"}, CAFile: "/no/such/ca.crt"}, "--datastore-cafile: stat /no/such/ca.crt"},
		"files, no etcd": {Datastore{CAFile: "/etc/hostname"}, "need --datastore-endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.d.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !contains(err.Error(), tc.want)) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

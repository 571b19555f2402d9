package etcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
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

// TestStartDefragments fills the member with 100 MB, deletes and compacts it
// away, and restarts it: the start gives the free pages back to the disk.
func TestStartDefragments(t *testing.T) {
	dir := t.TempDir()
	m := &Member{Dir: filepath.Join(dir, "etcd"), Socket: filepath.Join(dir, "etcd.sock"), LogFile: filepath.Join(dir, "etcd.log")}
	ctx := context.Background()
	start := func() (*clientv3.Client, func()) {
		cctx, cancel := context.WithCancel(ctx)
		wait, err := m.Start(cctx, func(string, ...any) {})
		if err != nil {
			t.Fatal(err)
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		return c, func() { c.Close(); cancel(); _ = wait() }
	}
	c, stop := start()
	value := strings.Repeat("x", 1<<20)
	for i := range 100 {
		if _, err := c.Put(ctx, fmt.Sprintf("/k/%d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Delete(ctx, "/k/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx, res.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	status, err := c.Status(ctx, m.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if m.Reclaimed != 0 {
		t.Errorf("the first start reclaimed %d bytes of a new member", m.Reclaimed)
	}
	c, stop = start()
	defer stop()
	if m.Reclaimed < 64<<20 {
		t.Errorf("the restart reclaimed %d bytes of a %d-byte database with %d in use, want at least 64 MB",
			m.Reclaimed, status.DbSize, status.DbSizeInUse)
	}
	after, err := c.Status(ctx, m.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if after.DbSize >= status.DbSize/2 {
		t.Errorf("database %d bytes after the restart, was %d", after.DbSize, status.DbSize)
	}
}

// TestRunningMemberDefragments churns 100 MB through a running member
// (written, deleted, compacted, as the apiserver compacts) and waits for
// the member to shrink its database file by itself, without a restart, and
// to log the defragmentation with how long it took.
func TestRunningMemberDefragments(t *testing.T) {
	dir := t.TempDir()
	m := &Member{Dir: filepath.Join(dir, "etcd"), Socket: filepath.Join(dir, "etcd.sock"), LogFile: filepath.Join(dir, "etcd.log"),
		DefragEvery: 100 * time.Millisecond}
	var mu sync.Mutex
	var logged []string
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, prefix+" "+args)
	}, funcr.Options{})
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	wait, err := m.Start(ctx, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("a stop on purpose returned %v", err)
		}
	}()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := filepath.Join(m.Dir, "member", "snap", "db")
	value := strings.Repeat("x", 1<<20)
	for i := range 100 {
		if _, err := c.Put(ctx, fmt.Sprintf("/k/%d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	// etcd commits its backend in batches (every 100 ms): the file holds
	// the last writes a moment after they are acknowledged.
	var full os.FileInfo
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if full, err = os.Stat(file); err != nil {
			t.Fatal(err)
		}
		if full.Size() >= 100<<20 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("database file %d bytes 10 s after writing 100 MB", full.Size())
		}
	}
	res, err := c.Delete(ctx, "/k/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx, res.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < full.Size()/2 {
			t.Logf("database file %d MB after the churn, %d MB after defragmentation", full.Size()>>20, fi.Size()>>20)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes a minute after the churn (was %d)", fi.Size(), full.Size())
		}
		time.Sleep(100 * time.Millisecond) // polling a file's size: nothing to watch
	}
	// The line is logged right after the file is swapped.
	for {
		mu.Lock()
		text := strings.Join(logged, "\n")
		mu.Unlock()
		if strings.Contains(text, `"msg"="Defragmented the database"`) && strings.Contains(text, `"took"=`) {
			if !strings.Contains(text, "Defragmenting the database") {
				t.Errorf("no line before the defragmentation:\n%s", text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no defragmentation logged:\n%s", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Put(ctx, "/after", "v"); err != nil {
		t.Errorf("a write after the defragmentation: %v", err)
	}
}

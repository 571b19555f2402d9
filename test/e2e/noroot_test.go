package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

var (
	noNetWhy   = regexp.MustCompile(`(?m)^  pod network +none: pods share the host's network \((.+)\)`)
	noServices = regexp.MustCompile(`(?m)^  Services +ClusterIPs and NodePorts do not route: pods share the host's network`)
	noNetDNS   = regexp.MustCompile(`(?m)^  cluster DNS +127\.`)
)

// TestPodsWithoutPodNetwork: a quartet that cannot make pod networks (not
// root; as root the test runs it as a new unprivileged user) says so in its
// start-up table, and pods still run, sharing the host's network, each with
// a NoPodNetwork warning event that says why.
func TestPodsWithoutPodNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := cluster.Options{Args: []string{"--nodes=1"}}
	if os.Geteuid() == 0 {
		uid, gid := addLocalUser(t)
		opts.Credential = &syscall.Credential{Uid: uid, Gid: gid}
		opts.Bin = userBinary(t)
		dir, err := os.MkdirTemp("", "quartet-noroot-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
		opts.DataDir = dir
	}
	c := start(t, opts)
	out := c.Output.String()
	m := noNetWhy.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no `pod network  none: pods share the host's network (<why>)` line in:\n%s", out)
	}
	why := m[1]
	t.Logf("pod network: none (%s)", why)
	if !noServices.MatchString(out) {
		t.Errorf("no `Services  ClusterIPs and NodePorts do not route: pods share the host's network` line in:\n%s", out)
	}
	if !noNetDNS.MatchString(out) {
		t.Errorf("cluster DNS not on a loopback address without a pod network:\n%s", out)
	}

	waitFor(t, ctx, "pod shell created", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "run", "shell", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
		return err == nil, out
	})
	waitPodsReady(t, ctx, c, "shell")
	// It runs (a process of the host's network).
	if got, err := c.Kubectl(ctx, "", "exec", "shell", "--", "sh", "-c", "echo running"); err != nil || got != "running\n" {
		t.Errorf("exec in the pod: %q (%v)", got, err)
	}
	want := "The pod shares the host's network (" + why + ")"
	waitFor(t, ctx, "shell's NoPodNetwork event", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "events", "--field-selector", "involvedObject.name=shell",
			"-o", `jsonpath={range .items[*]}{.type} {.reason}: {.message}{"\n"}{end}`)
		return err == nil && strings.Contains(out, "Warning NoPodNetwork: "+want), out
	})
}

// userBinary copies the quartet binary where any user may run it.
func userBinary(t *testing.T) string {
	t.Helper()
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "quartet-bin-any-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "quartet")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

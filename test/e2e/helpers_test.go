// Package e2e tests the built quartet binary as a user drives it: `quartet up`
// in a temp dir on a free port, then kubectl.
package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
	"quartet.dev/quartet/test/imagetest"
)

// start runs `quartet up` for the test and stops it (checking that nothing
// is left behind) when the test ends.
func start(t testing.TB, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("quartet up output:\n%s", c.Output.String())
		}
	})
	return c
}

// kubectl runs `quartet kubectl` and fails the test on error.
func kubectl(t testing.TB, c *cluster.Cluster, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.Kubectl(ctx, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond every 200 ms until it holds or ctx ends; on timeout it
// fails with what cond last saw.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last saw:\n%s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// noNodes are the flags for a cluster without node agents, where pods stay
// Pending: the control plane alone.
func noNodes() []string { return []string{"--nodes=0"} }

func itoa(i int) string { return strconv.Itoa(i) }

// podNetworkHost finds the host's address on the pod bridge in quartet up's
// start-up table (absent without a pod network).
var podNetworkHost = regexp.MustCompile(`(?m)^  pod network .* on bridge \S+, host (\S+?)(?:,|;|\s)`)

var caData = regexp.MustCompile(`certificate-authority-data: (\S+)`)

func extractCA(kubeconfig string) string {
	m := caData.FindStringSubmatch(kubeconfig)
	if m == nil {
		return "<no CA in kubeconfig>"
	}
	return m[1]
}

// runBinary runs the quartet binary with args (at most 30 s) and returns its
// combined output.
func runBinary(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// pushApp pushes the tests' app image to reg as repoTag and returns its
// reference.
func pushApp(t testing.TB, reg *imagetest.Registry, repoTag string) string {
	t.Helper()
	app, err := imagetest.AppImage(imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	image, err := reg.Push(repoTag, app)
	if err != nil {
		t.Fatal(err)
	}
	return image
}

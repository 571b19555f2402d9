package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// TestStopWithoutReader: a `quartet up` whose standard output is a pipe
// nobody reads any more (the terminal or the program that started it is
// gone) still stops cleanly on SIGTERM: it exits 0 and removes its pod
// network, instead of dying of SIGPIPE on its "quartet is stopping" line and
// leaving the bridge, tables and namespaces behind.
func TestStopWithoutReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pod networks need root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	cluster.EnableSubreaper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "up", "--data-dir", dataDir, "--api-port", strconv.Itoa(port), "--nodes=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	clean := false
	t.Cleanup(func() {
		if clean {
			return
		}
		// Killed, or it died before cleaning up: a start on the same data
		// dir removes what it left, and a stop what that start made.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Logf("quartet up killed: %v", <-exited)
		if c, err := cluster.Start(cluster.Options{DataDir: dataDir, APIPort: port, Bin: bin, Args: noNodes()}); err != nil {
			t.Errorf("a start to sweep what quartet up left: %v", err)
		} else if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
	})

	// Read up to the ready line, then close the reading end.
	var out strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), cluster.ReadyLine) {
			break
		}
	}
	if !strings.Contains(out.String(), cluster.ReadyLine) {
		t.Fatalf("quartet up did not get ready:\n%s%s", out.String(), stderr.String())
	}
	if m := noNetLine.FindString(out.String()); m != "" {
		t.Skipf("no pod network on this machine:%s", strings.TrimPrefix(m, "  pod network"))
	}
	m := bridgeLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no pod network line in quartet up's output:\n%s", out.String())
	}
	bridge := m[1]
	services := servicesBusy.FindString(out.String()) == ""

	// A pod with a sandbox, so that the stop has one to remove.
	c := &cluster.Cluster{DataDir: dataDir, APIPort: port, Bin: bin, Kubeconfig: datadir.Dir(dataDir).Kubeconfig()}
	// (Retried: the namespace's default service account may not exist yet.)
	waitFor(t, ctx, "pod sleeper created", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "run", "sleeper", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
		return err == nil, out
	})
	waitPodsReady(t, ctx, c, "sleeper")
	veths := networkOf(t, bridge)

	r.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the clean-up
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("quartet up with its stdout reader gone exited with %v after SIGTERM, want 0; stderr:\n%s", ee.ProcessState, stderr.String())
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("quartet up did not exit within 45 s of SIGTERM; stderr:\n%s", stderr.String())
	}
	if left := cluster.Leftovers(cmd.Process.Pid); len(left) > 0 {
		t.Errorf("processes left behind: %s", strings.Join(left, "; "))
	}
	checkNetworkGone(t, dataDir, bridge, veths, services)
	clean = !t.Failed()
}

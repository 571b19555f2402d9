package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"quartet.dev/quartet/internal/node/logs"
	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/runc"
)

func readLog(t *testing.T, path string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := logs.Serve(context.Background(), &buf, path, logs.Options{}, nil, 0); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func waitExit(t *testing.T, inst runtime.Instance) runtime.ExitStatus {
	t.Helper()
	var done <-chan struct{}
	if pi, ok := inst.(*Instance); ok {
		done = pi.Done()
	} else {
		done = inst.(*runc.Instance).Done()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("instance did not exit")
	}
	st, ok := inst.Exited()
	if !ok {
		t.Fatal("Done closed but Exited false")
	}
	return st
}

func TestEchoAndExitCode(t *testing.T) {
	dir := t.TempDir()
	r := New(Config{})
	exited := make(chan struct{})
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
		Name:     "c",
		Argv:     []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"},
		Env:      []string{"PATH=" + DefaultPath},
		LogPath:  filepath.Join(dir, "0.log"),
		StateDir: filepath.Join(dir, "state"),
	}, func() { close(exited) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inst.ID(), "process://") {
		t.Errorf("ID = %q, want process:// prefix", inst.ID())
	}
	st := waitExit(t, inst)
	<-exited
	if st.ExitCode != 3 || st.Reason != "Error" {
		t.Errorf("exit = %+v, want code 3 reason Error", st)
	}
	got := readLog(t, filepath.Join(dir, "0.log"))
	if !strings.Contains(got, "hello\n") || !strings.Contains(got, "oops\n") {
		t.Errorf("log = %q, want hello and oops", got)
	}
	var out bytes.Buffer
	if err := logs.Serve(context.Background(), &out, filepath.Join(dir, "0.log"), logs.Options{Stream: "Stdout"}, nil, 0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("hello\n", out.String()); diff != "" {
		t.Errorf("stdout only (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", pidFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

func TestCommandNotFound(t *testing.T) {
	dir := t.TempDir()
	r := New(Config{})
	_, err := r.Start(context.Background(), &runtime.ContainerSpec{
		Argv:    []string{"no-such-command-quartet"},
		LogPath: filepath.Join(dir, "0.log"),
	}, nil)
	if !runtime.IsStartError(err) {
		t.Fatalf("err = %v, want a StartError", err)
	}
	if !strings.Contains(err.Error(), "executable file not found in $PATH") {
		t.Errorf("err = %v", err)
	}
}

func TestSignalKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	r := New(Config{})
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
		Argv:     []string{"sh", "-c", "sleep 300 & echo $! > " + filepath.Join(dir, "child") + "; wait"},
		LogPath:  filepath.Join(dir, "0.log"),
		StateDir: filepath.Join(dir, "state"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var childPid int
	for i := 0; i < 100; i++ {
		if b, err := os.ReadFile(filepath.Join(dir, "child")); err == nil && len(b) > 0 {
			if _, err := fmtSscan(string(b), &childPid); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if childPid == 0 {
		t.Fatal("child pid not written")
	}
	if err := inst.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, inst)
	if st.ExitCode != 128+int32(syscall.SIGTERM) {
		t.Errorf("exit code = %d, want 143", st.ExitCode)
	}
	if err := syscall.Kill(childPid, 0); err == nil {
		// The child may be a zombie for an instant; give it a moment.
		time.Sleep(200 * time.Millisecond)
		if b, _ := os.ReadFile("/proc/" + itoa(childPid) + "/stat"); len(b) > 0 && !strings.Contains(string(b), ") Z") {
			t.Errorf("child %d survived its container", childPid)
		}
	}
}

func TestShutdownKillsEverything(t *testing.T) {
	dir := t.TempDir()
	r := New(Config{})
	var insts []runtime.Instance
	for i := 0; i < 3; i++ {
		inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
			Argv:    []string{"sh", "-c", "trap '' TERM; sleep 300"},
			LogPath: filepath.Join(dir, itoa(i)+".log"),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst)
	}
	start := time.Now()
	r.Shutdown(300 * time.Millisecond)
	if time.Since(start) > 5*time.Second {
		t.Errorf("Shutdown took %s", time.Since(start))
	}
	for _, inst := range insts {
		if _, ok := inst.Exited(); !ok {
			t.Errorf("%s still running after Shutdown", inst.ID())
		}
	}
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	r := New(Config{})
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
		Argv:    []string{"sleep", "30"},
		Env:     []string{"GREETING=hi"},
		LogPath: filepath.Join(dir, "0.log"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(time.Second)
	var out bytes.Buffer
	code, err := r.ExecStream(context.Background(), inst, runtime.ExecOptions{
		Argv: []string{"sh", "-c", "read x; echo $GREETING $x; exit 4"}, Stdin: strings.NewReader("there\n"), Stdout: &out})
	if err != nil || code != 4 || out.String() != "hi there\n" {
		t.Errorf("ExecStream = %d %q %v, want 4 \"hi there\\n\" nil", code, out.String(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err = r.ExecStream(ctx, inst, runtime.ExecOptions{Argv: []string{"sleep", "10"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExecStream past its deadline: err = %v", err)
	}
	// A terminal: the command sees one, and its output comes back.
	out.Reset()
	code, err = r.ExecStream(context.Background(), inst, runtime.ExecOptions{
		Argv: []string{"sh", "-c", "test -t 0 && test -t 1 && echo tty"}, Stdout: &out, TTY: true})
	if err != nil || code != 0 || !strings.Contains(out.String(), "tty") {
		t.Errorf("ExecStream with a TTY = %d %q %v", code, out.String(), err)
	}
}

// containerRuntime is a process runtime that runs containers, or skips
// the test where this machine cannot.
func containerRuntime(t *testing.T, dataDir string) *Runtime {
	t.Helper()
	if ok, why := Isolation(); !ok {
		t.Skipf("no containers: %s", why)
	}
	m, err := runc.New(runc.Config{
		StateRoot:    filepath.Join(dataDir, "run", "containers"),
		CgroupParent: runc.CgroupParentFor(dataDir),
		Masked:       []string{dataDir},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{Containers: m, StateRoot: filepath.Join(dataDir, "nodes")})
	t.Cleanup(func() {
		r.Shutdown(time.Second)
		if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + runc.CgroupParentFor(dataDir)); len(dirs) > 0 {
			t.Errorf("cgroups left behind: %v", dirs)
		}
	})
	return r
}

func TestIsolatedContainer(t *testing.T) {
	dir := t.TempDir()
	r := containerRuntime(t, dir)
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 10.0.0.10\nsearch default.svc.cluster.local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mountPath := "/usr/share/quartet-test-" + filepath.Base(dir) + "/html"
	script := strings.Join([]string{
		"hostname",
		"echo written > " + mountPath + "/index.html",
		"cat /etc/resolv.conf",
		"echo $$", // PID 1 of its own PID namespace
		"touch /etc/quartet-test 2>/dev/null || echo etc read-only",
		"mkdir /quartet-test 2>/dev/null || echo root read-only",
		"touch /tmp/quartet-private-" + filepath.Base(dir) + " && echo tmp writable",
		"test -e " + resolv + " || echo data dir hidden",
		"grep CapEff /proc/self/status",
	}, "; ")
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
		ID:   NewID(),
		Argv: []string{"sh", "-c", script},
		Mounts: []runtime.Mount{
			{HostPath: vol, ContainerPath: mountPath},
			{HostPath: resolv, ContainerPath: "/etc/resolv.conf", ReadOnly: true},
		},
		Hostname: "web-0",
		Env:      []string{"PATH=" + DefaultPath},
		LogPath:  filepath.Join(dir, "0.log"),
		StateDir: filepath.Join(dir, "state"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, inst)
	logText := readLog(t, filepath.Join(dir, "0.log"))
	if st.ExitCode != 0 {
		t.Fatalf("exit %d, log:\n%s", st.ExitCode, logText)
	}
	// containerd's default set: 0x00000000a80425fb.
	want := "web-0\nnameserver 10.0.0.10\nsearch default.svc.cluster.local\n1\netc read-only\nroot read-only\ntmp writable\ndata dir hidden\nCapEff:\t00000000a80425fb\n"
	if diff := cmp.Diff(want, logText); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(vol, "index.html")); err != nil || string(b) != "written\n" {
		t.Errorf("volume file = %q, %v", b, err)
	}
	host, _ := os.Hostname()
	if host == "web-0" {
		t.Errorf("host's hostname changed")
	}
	if _, err := os.Stat("/tmp/quartet-private-" + filepath.Base(dir)); err == nil {
		t.Errorf("the container wrote to the host's /tmp")
	}
	if _, err := os.Stat(filepath.Dir(mountPath)); err == nil {
		t.Errorf("%s was created on the host", filepath.Dir(mountPath))
	}
}

// TestContainerProcessesDieWithIt: a setsid child and a background child
// die with the container, and a container left by a crashed run is found
// and killed by the next one.
func TestContainerProcessesDieWithIt(t *testing.T) {
	dir := t.TempDir()
	r := containerRuntime(t, dir)
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
		ID:       NewID(),
		Argv:     []string{"sh", "-c", "setsid sleep 300 & sleep 300 & echo started; wait"},
		Env:      []string{"PATH=" + DefaultPath},
		LogPath:  filepath.Join(dir, "0.log"),
		StateDir: filepath.Join(dir, "state"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ci := inst.(*runc.Instance)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readLog(t, filepath.Join(dir, "0.log")), "started") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	pids := descendants(ci.Pid())
	if len(pids) < 2 {
		t.Fatalf("children of the container's init: %v", pids)
	}
	// A second runtime on the same data dir, as after a crash, kills it all.
	m2, err := runc.New(runc.Config{StateRoot: filepath.Join(dir, "run", "containers"), CgroupParent: runc.CgroupParentFor(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m2.KillLeftovers(); err != nil || n != 1 {
		t.Fatalf("KillLeftovers = %d, %v; want 1", n, err)
	}
	waitExit(t, inst)
	for _, pid := range append(pids, ci.Pid()) {
		if err := syscall.Kill(pid, 0); err == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z") {
				t.Errorf("process %d survived", pid)
			}
		}
	}
}

// descendants lists the pids below pid (from /proc/*/stat's ppid).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(strings.TrimSpace(s), v) }

func itoa(i int) string { return strconv.Itoa(i) }

// TestContainerExec: ExecStream runs in the container's namespaces, with
// stdin, with a terminal, and is killed when its context ends.
func TestContainerExec(t *testing.T) {
	dir := t.TempDir()
	r := containerRuntime(t, dir)
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{
		ID:       NewID(),
		Argv:     []string{"sleep", "300"},
		Env:      []string{"PATH=" + DefaultPath, "GREETING=hi"},
		Hostname: "exec-0",
		LogPath:  filepath.Join(dir, "0.log"),
		StateDir: filepath.Join(dir, "state"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Signal(syscall.SIGKILL) //nolint:errcheck // the test ends either way
	var out bytes.Buffer
	code, err := r.ExecStream(context.Background(), inst, runtime.ExecOptions{
		Argv: []string{"sh", "-c", "read x; echo $GREETING $x $(hostname) $$; exit 4"}, Stdin: strings.NewReader("there\n"), Stdout: &out})
	if err != nil || code != 4 || !strings.HasPrefix(out.String(), "hi there exec-0 ") || out.String() == "hi there exec-0 1\n" {
		t.Errorf("ExecStream = %d %q %v", code, out.String(), err)
	}
	out.Reset()
	code, err = r.ExecStream(context.Background(), inst, runtime.ExecOptions{
		Argv: []string{"sh", "-c", "test -t 0 && test -t 1 && echo tty"}, Stdout: &out, TTY: true})
	if err != nil || code != 0 || !strings.Contains(out.String(), "tty") {
		t.Errorf("ExecStream with a TTY = %d %q %v", code, out.String(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := r.ExecStream(ctx, inst, runtime.ExecOptions{Argv: []string{"sleep", "10"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExecStream past its deadline: err = %v", err)
	}
	if _, err := r.ExecStream(context.Background(), inst, runtime.ExecOptions{Argv: []string{"no-such-command"}}); err == nil || !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("ExecStream of a missing command: err = %v", err)
	}
}

//go:build linux

package runc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"quartet.dev/quartet/internal/node/runtime"
)

func newManager(t testing.TB) (*Manager, string) {
	if ok, why := Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	dir := t.TempDir()
	m, err := New(Config{StateRoot: filepath.Join(dir, "run", "containers"), CgroupParent: CgroupParentFor(dir), Masked: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// sleeper is a container of the host's sleep, as PID 1 of its own PID
// namespace (which ignores SIGTERM) or joining the pause's namespaces.
func sleeper(dir, id string, p *Pause, sharePID bool) *runtime.ContainerSpec {
	spec := &runtime.ContainerSpec{
		ID: id, Argv: []string{"sleep", "3600"}, Env: []string{"PATH=/usr/bin:/bin"}, Hostname: "pod",
		LogPath: filepath.Join(dir, id+".log"), StateDir: filepath.Join(dir, id),
	}
	if p != nil {
		spec.IPCNamespacePath, spec.UTSNamespacePath, spec.ShmPath = p.Namespace("ipc"), p.Namespace("uts"), p.Shm()
		if sharePID {
			spec.PIDNamespacePath = p.Namespace("pid")
		}
	}
	return spec
}

func nsOf(t testing.TB, pid int, ns string) string {
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitExec waits until libcontainer's init has executed the container's
// command (comm), which happens after Start has returned.
func waitExec(t *testing.T, inst *Instance, comm string) {
	t.Helper()
	for i := 0; ; i++ {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", inst.Pid()))
		if string(b) == comm+"\n" {
			return
		}
		if i == 250 {
			t.Fatalf("%s runs %q, not %s", inst.ID(), b, comm)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPause: containers that join a pause share its IPC and UTS
// namespaces (and the hostname it set), its /dev/shm, and its PID
// namespace when asked; the pause is none of the host's; removing it
// removes its state and /dev/shm mount.
func TestPause(t *testing.T) {
	m, dir := newManager(t)
	defer m.Shutdown(time.Second)
	p, err := m.StartPause("pause1", "pod", filepath.Join(dir, "pause"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"ipc", "uts", "pid"} {
		if nsOf(t, p.Pid(), ns) == nsOf(t, os.Getpid(), ns) {
			t.Errorf("the pause is in the host's %s namespace", ns)
		}
	}
	waitExec(t, p.Instance, "pause")
	shared, err := m.Start(sleeper(dir, "shared", p, true), runtime.KindProcess, Root{Path: filepath.Join(dir, "shared", "rootfs"), Host: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	own, err := m.Start(sleeper(dir, "own", p, false), runtime.KindProcess, Root{Path: filepath.Join(dir, "own", "rootfs"), Host: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Instance{shared, own} {
		for _, ns := range []string{"ipc", "uts"} {
			if nsOf(t, c.Pid(), ns) != nsOf(t, p.Pid(), ns) {
				t.Errorf("%s is not in the pause's %s namespace", c.ID(), ns)
			}
		}
	}
	if nsOf(t, shared.Pid(), "pid") != nsOf(t, p.Pid(), "pid") || nsOf(t, own.Pid(), "pid") == nsOf(t, p.Pid(), "pid") {
		t.Errorf("PID namespaces: pause %s, shared %s, own %s", nsOf(t, p.Pid(), "pid"), nsOf(t, shared.Pid(), "pid"), nsOf(t, own.Pid(), "pid"))
	}
	// A sleep as PID 1 of its own namespace cannot receive SIGTERM; in
	// the pod's it can.
	waitExec(t, own, "sleep")
	waitExec(t, shared, "sleep")
	if !own.deafToTERM() || shared.deafToTERM() {
		t.Errorf("deaf to SIGTERM: own %v, shared %v; want true, false", own.deafToTERM(), shared.deafToTERM())
	}
	trap := sleeper(dir, "trap", nil, false)
	trap.Argv = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}
	trapping, err := m.Start(trap, runtime.KindProcess, Root{Path: filepath.Join(dir, "trap", "rootfs"), Host: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitExec(t, trapping, "sh")
	for i := 0; trapping.deafToTERM(); i++ {
		// Until sh has set its trap.
		if i == 100 {
			t.Fatal("a shell trapping SIGTERM is deaf to it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.Stop([]*Instance{trapping}, 5*time.Second)
	if st, _ := trapping.Exited(); st.ExitCode != 0 {
		t.Errorf("the trapping shell ended with %d, want 0 (SIGTERM handled)", st.ExitCode)
	}
	if err := os.WriteFile(filepath.Join(p.Shm(), "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// SIGTERM ends a sleep that is not PID 1 (shared PID namespace).
	runtime.Stop([]*Instance{shared, own}, time.Second)
	p.Remove()
	if _, err := os.Stat(filepath.Join(dir, "pause")); !os.IsNotExist(err) {
		t.Errorf("the pause's state is left: %v", err)
	}
	if entries, _ := os.ReadDir(m.cfg.StateRoot); len(entries) > 0 {
		t.Errorf("containers left in the state root: %v", entries)
	}
}

// BenchmarkShutdown prints how long Shutdown takes with many pods running
// ($QUARTET_STOP_PODS, default 1000): each a pause and a sleep container
// in its IPC/UTS namespaces. A sleep, PID 1 of its own PID namespace,
// cannot receive SIGTERM, so Shutdown kills it at once instead of waiting
// the grace (5 s, as the node agents'); then every container and pause is
// removed (cgroups, state, /dev/shm).
func BenchmarkShutdown(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("QUARTET_STOP_PODS")); err == nil && v > 0 {
		n = v
	}
	const grace = 5 * time.Second
	for b.Loop() {
		b.StopTimer()
		m, dir := newManager(b)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed error
		ids := make(chan int)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ids {
					id := fmt.Sprintf("c%d", i)
					p, err := m.StartPause("p"+id, "pod", filepath.Join(dir, "p"+id))
					if err == nil {
						_, err = m.Start(sleeper(dir, id, p, false), runtime.KindProcess, Root{Path: filepath.Join(dir, id, "rootfs"), Host: true}, nil)
					}
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				}
			}()
		}
		started := time.Now()
		for i := 0; i < n; i++ {
			ids <- i
		}
		close(ids)
		wg.Wait()
		if failed != nil {
			m.Shutdown(grace)
			b.Fatal(failed)
		}
		b.Logf("%d pods (a pause and a container each) started in %v", n, time.Since(started).Round(time.Millisecond))
		b.StartTimer()
		t0 := time.Now()
		m.Shutdown(grace)
		d := time.Since(t0)
		b.ReportMetric(d.Seconds(), "s-stop")
		b.Logf("Shutdown of %d pods: %v", n, d.Round(time.Millisecond))
	}
}

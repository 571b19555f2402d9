package component

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// journal records what the components did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

// syncWriter is a bytes.Buffer for one writer and a reading test.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// plain is a component that runs until its context ends, recording its
// start and stop.
func plain(j *journal, name string, core bool) Component {
	return Component{Name: name, Core: core, Start: func(ctx context.Context, _ Progress) (string, func() error, error) {
		j.add("start %s", name)
		return "detail of " + name, func() error {
			<-ctx.Done()
			j.add("stop %s", name)
			return ctx.Err()
		}, nil
	}}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStartInOrderReadyThenStopInOrder(t *testing.T) {
	j := &journal{}
	out := &syncWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	r := &Runner{Out: out, Ready: func(time.Duration) { j.add("ready"); close(ready) }}
	done := make(chan error)
	go func() {
		done <- r.Run(ctx, []Component{plain(j, "etcd", true), plain(j, "apiserver", true), plain(j, "dns", false), plain(j, "nodes", false)})
	}()
	<-ready
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := j.get()
	wantStart := []string{"start etcd", "start apiserver", "start dns", "start nodes", "ready"}
	if !slices.Equal(got[:5], wantStart) {
		t.Errorf("start order %v, want %v", got[:5], wantStart)
	}
	stops := got[5:]
	// dns and nodes stop together, in either order; then the core, last first.
	if len(stops) != 4 || !slices.Contains(stops[:2], "stop dns") || !slices.Contains(stops[:2], "stop nodes") ||
		stops[2] != "stop apiserver" || stops[3] != "stop etcd" {
		t.Errorf("stop order %v, want dns and nodes, then apiserver, then etcd", stops)
	}
	if !strings.Contains(out.String(), "detail of dns") || !strings.Contains(out.String(), "quartet is stopping") {
		t.Errorf("progress output:\n%s", out.String())
	}
}

func TestStartFailureStopsWhatStarted(t *testing.T) {
	j := &journal{}
	bad := Component{Name: "dns", Start: func(context.Context, Progress) (string, func() error, error) {
		return "", nil, errors.New("address in use")
	}}
	r := &Runner{Ready: func(time.Duration) { t.Error("ready after a failed start") }}
	err := r.Run(context.Background(), []Component{plain(j, "etcd", true), bad, plain(j, "nodes", false)})
	if err == nil || err.Error() != "dns: address in use" {
		t.Fatalf("Run = %v, want dns: address in use", err)
	}
	if got, want := j.get(), []string{"start etcd", "stop etcd"}; !slices.Equal(got, want) {
		t.Errorf("journal %v, want %v", got, want)
	}
}

func TestInterruptedStart(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	slow := Component{Name: "apiserver", Start: func(ctx context.Context, p Progress) (string, func() error, error) {
		p("waiting for etcd")
		cancel() // the user presses Ctrl-C while the apiserver starts
		<-ctx.Done()
		return "", nil, ctx.Err()
	}}
	out := &syncWriter{}
	r := &Runner{Out: out}
	if err := r.Run(ctx, []Component{plain(j, "etcd", true), slow}); err != nil {
		t.Fatalf("Run = %v, want nil after an interrupt", err)
	}
	if got, want := j.get(), []string{"start etcd", "stop etcd"}; !slices.Equal(got, want) {
		t.Errorf("journal %v, want %v", got, want)
	}
	if !strings.Contains(out.String(), "waiting for etcd") {
		t.Errorf("progress not printed:\n%s", out.String())
	}
}

// crashing stops by itself with an error the first `crashes` times it runs.
func crashing(j *journal, name string, crashes int, policy Policy) Component {
	var mu sync.Mutex
	runs := 0
	return Component{Name: name, Policy: policy, Start: func(ctx context.Context, _ Progress) (string, func() error, error) {
		mu.Lock()
		runs++
		n := runs
		mu.Unlock()
		j.add("start %s %d", name, n)
		return "", func() error {
			if n <= crashes {
				return fmt.Errorf("crash %d", n)
			}
			<-ctx.Done()
			return nil
		}, nil
	}}
}

func TestRestartWithBackoff(t *testing.T) {
	j := &journal{}
	out := &syncWriter{}
	var waits []int
	var mu sync.Mutex
	r := &Runner{Out: out, Backoff: func(n int) time.Duration {
		mu.Lock()
		waits = append(waits, n)
		mu.Unlock()
		return time.Millisecond
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- r.Run(ctx, []Component{plain(j, "etcd", true), crashing(j, "kube-controller-manager", 3, Restart)})
	}()
	eventually(t, "the fourth start", func() bool { return slices.Contains(j.get(), "start kube-controller-manager 4") })
	eventually(t, "the restart reported", func() bool { return strings.Contains(out.String(), "kube-controller-manager is running again") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(waits, []int{1, 2, 3}) {
		t.Errorf("back-off asked for %v, want 1, 2, 3 (consecutive failures)", waits)
	}
	if !strings.Contains(out.String(), "kube-controller-manager stopped: crash 1; restarting in 1ms") {
		t.Errorf("the crash is not reported:\n%s", out.String())
	}
}

func TestRestartThatFailsToStart(t *testing.T) {
	out := &syncWriter{}
	var mu sync.Mutex
	starts := 0
	flaky := Component{Name: "dns", Start: func(ctx context.Context, _ Progress) (string, func() error, error) {
		mu.Lock()
		defer mu.Unlock()
		starts++
		switch starts {
		case 1:
			return "", func() error { return errors.New("socket closed") }, nil
		case 2:
			return "", nil, errors.New("address in use")
		}
		return "", func() error { <-ctx.Done(); return nil }, nil
	}}
	r := &Runner{Out: out, Backoff: func(int) time.Duration { return time.Millisecond }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, []Component{flaky}) }()
	eventually(t, "dns running again", func() bool { return strings.Contains(out.String(), "dns is running again") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "dns did not start: address in use; retrying in 1ms") {
		t.Errorf("the failed restart is not reported:\n%s", out.String())
	}
}

func TestFatalStopEndsTheRun(t *testing.T) {
	j := &journal{}
	r := &Runner{Backoff: func(int) time.Duration { return time.Millisecond }}
	err := r.Run(context.Background(), []Component{plain(j, "etcd", true), crashing(j, "kube-apiserver", 1, Fatal), plain(j, "dns", false)})
	if err == nil || err.Error() != "kube-apiserver: crash 1" {
		t.Fatalf("Run = %v, want kube-apiserver: crash 1", err)
	}
	got := j.get()
	if !slices.Contains(got, "stop dns") || got[len(got)-1] != "stop etcd" {
		t.Errorf("journal %v: want dns stopped, then etcd last", got)
	}
}

func TestReportLeavesItStopped(t *testing.T) {
	j := &journal{}
	out := &syncWriter{}
	r := &Runner{Out: out}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, []Component{crashing(j, "local-path storage", 5, Report)}) }()
	eventually(t, "the stop reported", func() bool { return strings.Contains(out.String(), "quartet runs on without it") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := j.get(); len(got) != 1 {
		t.Errorf("journal %v, want one start", got)
	}
}

// Package component runs the parts of `quartet up` (etcd, the apiserver, the
// controller managers, the scheduler, DNS, storage, the node agents, the
// control socket) as one ordered list: each is started when the one before
// it is ready, the ready line comes when all are, one that stops by itself
// is restarted with back-off (or, for the few the rest cannot live without,
// ends the run with its reason), and there is one shutdown path for all.
package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"sync"
	"time"
)

// ProfileLabel is the pprof label every component's goroutines carry, with
// the component's name as its value: Start runs under it and the goroutines
// it starts inherit it, so a CPU profile of the process can tell the
// components' seconds apart.
const ProfileLabel = "quartet.component"

// Component is one part of the cluster.
type Component struct {
	Name string
	// Start starts the component under ctx and returns once it is ready,
	// with a short detail for the progress line. It reports what it waits
	// for through progress. The component runs until ctx is done; wait
	// blocks until it has stopped and returns why when it stopped by
	// itself. A nil wait means nothing runs on its own after Start.
	Start func(ctx context.Context, progress Progress) (detail string, wait func() error, err error)
	// Policy says what happens when the component stops by itself.
	Policy Policy
	// Core components are the ones every other uses (etcd, the
	// apiserver): they stop last, one by one in reverse order, once the
	// others have stopped.
	Core bool
	// StopTimeout bounds the wait for the component to stop (default 5s).
	StopTimeout time.Duration
}

// Policy is what happens to a component that stops by itself.
type Policy int

const (
	// Restart starts it again, after a back-off that doubles from one
	// second up to half a minute while it keeps failing.
	Restart Policy = iota
	// Fatal ends the run with its error: nothing works without it.
	Fatal
	// Report says so on the progress output and leaves it stopped, for a
	// component that cannot be started twice in one process.
	Report
)

// Progress reports what a starting component is waiting for; the runner
// prints at most one such line every few seconds per component.
type Progress func(format string, args ...any)

// Runner runs a list of components.
type Runner struct {
	// Out receives the progress lines.
	Out io.Writer
	// Ready is called once every component is ready, with the time since
	// Run began.
	Ready func(took time.Duration)
	// Backoff is the wait before the n-th consecutive restart (n from 1);
	// nil is one second doubling up to 30 s.
	Backoff func(n int) time.Duration
	// ProgressEvery is the shortest interval between two waiting lines
	// of one component (default 5 s).
	ProgressEvery time.Duration

	start   time.Time
	mu      sync.Mutex // guards running and Out
	running []*running
	events  chan event
	closing chan struct{}
}

// running is a component that was started.
type running struct {
	Component
	gen    int // incremented by every (re)start; events of older ones are stale
	cancel context.CancelFunc
	done   chan struct{} // closed when the current instance has stopped
	since  time.Time
	fails  int
}

type event struct {
	r   *running
	gen int
	err error
}

// Run starts the components in order and runs them until ctx is done or a
// Fatal one stops; then it stops them all and returns. A component that
// fails to start ends the run with its error (and everything started before
// it is stopped): at that point the cause is a setting or the machine, and
// nothing depends on the cluster yet.
func (r *Runner) Run(ctx context.Context, comps []Component) error {
	r.start = time.Now()
	r.events = make(chan event, len(comps))
	r.closing = make(chan struct{})
	if r.Out == nil {
		r.Out = io.Discard
	}
	for _, c := range comps {
		rc := &running{Component: c}
		detail, err := r.startOne(ctx, rc)
		if err != nil {
			r.shutdown()
			if ctx.Err() != nil {
				return nil // interrupted while starting
			}
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		r.mu.Lock()
		r.running = append(r.running, rc)
		r.mu.Unlock()
		r.step(c.Name, detail)
	}
	if r.Ready != nil {
		r.Ready(time.Since(r.start))
	}
	restarts := map[*running]*time.Timer{}
	defer func() {
		for _, t := range restarts {
			t.Stop()
		}
	}()
	restartDue := make(chan *running, len(comps))
	for {
		select {
		case <-ctx.Done():
			r.shutdown()
			return nil
		case ev := <-r.events:
			rc := ev.r
			r.mu.Lock()
			stale := ev.gen != rc.gen
			r.mu.Unlock()
			if stale {
				continue
			}
			why := "stopped"
			if ev.err != nil {
				why = "stopped: " + ev.err.Error()
			}
			switch rc.Policy {
			case Fatal:
				r.printf("%s %s\n", rc.Name, why)
				r.shutdown()
				if ev.err == nil {
					ev.err = errors.New("stopped")
				}
				return fmt.Errorf("%s: %w", rc.Name, ev.err)
			case Report:
				r.printf("%s %s; quartet runs on without it (restart quartet to start it again)\n", rc.Name, why)
			case Restart:
				d := r.backoff(rc)
				r.printf("%s %s; restarting in %s\n", rc.Name, why, d)
				restarts[rc] = time.AfterFunc(d, func() { restartDue <- rc })
			}
		case rc := <-restartDue:
			delete(restarts, rc)
			detail, err := r.startOne(ctx, rc)
			if ctx.Err() != nil {
				continue // the next turn of the loop shuts down
			}
			if err != nil {
				d := r.backoff(rc)
				r.printf("%s did not start: %v; retrying in %s\n", rc.Name, err, d)
				restarts[rc] = time.AfterFunc(d, func() { restartDue <- rc })
				continue
			}
			r.printf("%s is running again (%s)\n", rc.Name, detail)
		}
	}
}

// startOne starts (or restarts) a component under a context of its own, so
// that shutdown can stop the components in order rather than all at once;
// the run's context only interrupts the start.
func (r *Runner) startOne(ctx context.Context, rc *running) (string, error) {
	cctx, cancel := context.WithCancel(context.Background())
	interrupt := context.AfterFunc(ctx, cancel)
	defer interrupt()
	var last time.Time
	every := r.ProgressEvery
	if every == 0 {
		every = 5 * time.Second
	}
	progress := func(format string, args ...any) {
		if now := time.Now(); now.Sub(last) >= every {
			last = now
			r.step(rc.Name, fmt.Sprintf(format, args...))
		}
	}
	var (
		detail string
		wait   func() error
		err    error
	)
	labels := pprof.Labels(ProfileLabel, rc.Name)
	pprof.Do(cctx, labels, func(cctx context.Context) { detail, wait, err = rc.Start(cctx, progress) })
	if err != nil {
		cancel()
		return "", err
	}
	done := make(chan struct{})
	r.mu.Lock()
	rc.gen++
	gen := rc.gen
	rc.cancel, rc.done, rc.since = cancel, done, time.Now()
	r.mu.Unlock()
	go func() {
		pprof.SetGoroutineLabels(pprof.WithLabels(cctx, labels))
		var err error
		if wait != nil {
			err = wait()
		} else {
			<-cctx.Done()
		}
		close(done)
		if cctx.Err() != nil {
			return // stopped on purpose
		}
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		select {
		case r.events <- event{r: rc, gen: gen, err: err}:
		case <-r.closing:
		}
	}()
	return detail, nil
}

// backoff is the wait before restarting rc, counting the failures since it
// last ran for a minute.
func (r *Runner) backoff(rc *running) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(rc.since) > time.Minute {
		rc.fails = 0
	}
	rc.fails++
	if r.Backoff != nil {
		return r.Backoff(rc.fails)
	}
	d := time.Second << min(rc.fails-1, 5)
	return min(d, 30*time.Second)
}

// shutdown stops every started component: all but the core ones at once,
// then the core ones one by one, last started first, each within its
// StopTimeout.
func (r *Runner) shutdown() {
	close(r.closing)
	r.mu.Lock()
	all := append([]*running(nil), r.running...)
	r.mu.Unlock()
	if len(all) > 0 {
		r.printf("quartet is stopping\n")
	}
	var wg sync.WaitGroup
	for _, rc := range all {
		if !rc.Core {
			wg.Add(1)
			go func() { defer wg.Done(); r.stopOne(rc) }()
		}
	}
	wg.Wait()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Core {
			r.stopOne(all[i])
		}
	}
}

func (r *Runner) stopOne(rc *running) {
	r.mu.Lock()
	cancel, done := rc.cancel, rc.done
	r.mu.Unlock()
	cancel()
	d := rc.StopTimeout
	if d == 0 {
		d = 5 * time.Second
	}
	select {
	case <-done:
	case <-time.After(d):
		r.printf("%s did not stop within %s\n", rc.Name, d)
	}
}

// step prints a progress line: the component, a detail, the time since Run
// began.
func (r *Runner) step(name, detail string) {
	r.printf("  %-26s %-44s %5.1fs\n", name, detail, time.Since(r.start).Seconds())
}

func (r *Runner) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.Out, format, args...)
}

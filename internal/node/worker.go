package node

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/utils/clock"
)

// Retry delays after a failed sync: per pod, doubling from the first to the
// last (the client-go controller rate limiter's per-item numbers).
const (
	syncRetryFirst = 5 * time.Millisecond
	syncRetryMax   = 1000 * time.Second
)

// podWorker owns one pod's syncs: it runs them one at a time, on a
// goroutine that exists only while there is work, and coalesces the wake-ups
// (informer events, exits, probe verdicts, timers) that arrive meanwhile
// into one more sync. The host bounds how many pods sync at once.
type podWorker struct {
	h   *Host
	uid types.UID

	mu       sync.Mutex
	pending  bool // a sync is asked for
	running  bool // the goroutine is running syncs
	timer    clock.Timer
	timerAt  time.Time
	failures int
}

func newPodWorker(h *Host, uid types.UID) *podWorker {
	return &podWorker{h: h, uid: uid}
}

// wake asks for a sync as soon as possible.
func (w *podWorker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = true
	w.startLocked()
}

// wakeAfter asks for a sync after d; an earlier timer stays in force.
func (w *podWorker) wakeAfter(d time.Duration) {
	if d <= 0 {
		w.wake()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	at := w.h.clock.Now().Add(d)
	if w.timer != nil {
		if !w.timerAt.After(at) {
			return
		}
		w.timer.Stop()
	}
	w.timerAt = at
	var t clock.Timer
	t = w.h.clock.AfterFunc(d, func() {
		w.mu.Lock()
		if w.timer == t {
			w.timer, w.timerAt = nil, time.Time{}
		}
		w.mu.Unlock()
		w.wake()
	})
	w.timer = t
}

// stop cancels a pending timer (the pod is forgotten).
func (w *podWorker) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer, w.timerAt = nil, time.Time{}
	}
	w.pending = false
}

func (w *podWorker) startLocked() {
	if w.running {
		return
	}
	if !w.h.workers.enter() {
		return // the host is stopping
	}
	w.running = true
	go w.loop()
}

// loop runs syncs while one is pending.
func (w *podWorker) loop() {
	defer w.h.workers.leave()
	for {
		w.mu.Lock()
		if !w.pending || w.h.workers.stopping() {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.pending = false
		w.mu.Unlock()

		ctx := w.h.workers.ctx
		if !w.h.workers.acquire() {
			w.mu.Lock()
			w.running = false
			w.mu.Unlock()
			return
		}
		requeue, err := w.h.syncPodSafely(ctx, w.uid)
		w.h.workers.release()

		w.mu.Lock()
		switch {
		case err != nil:
			d := syncRetryFirst << min(w.failures, 30)
			if d > syncRetryMax || d <= 0 {
				d = syncRetryMax
			}
			w.failures++
			w.mu.Unlock()
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing pod failed", "podUID", w.uid)
			w.wakeAfter(d)
		case requeue > 0:
			w.failures = 0
			w.mu.Unlock()
			w.wakeAfter(requeue)
		default:
			w.failures = 0
			w.mu.Unlock()
		}
	}
}

// workerPool is what pod workers share: the run context, a bound on
// concurrent syncs, and a wait group so that Run returns only after every
// sync has ended.
type workerPool struct {
	ctx   context.Context
	slots chan struct{}

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newWorkerPool(ctx context.Context, n int) *workerPool {
	return &workerPool{ctx: ctx, slots: make(chan struct{}, n)}
}

func (p *workerPool) enter() bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

func (p *workerPool) leave() { p.wg.Done() }

func (p *workerPool) stopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *workerPool) acquire() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	case <-p.ctx.Done():
		return false
	}
}

func (p *workerPool) release() { <-p.slots }

// close lets no new sync start and waits for the running ones.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}

// syncPodSafely turns a panic while syncing one pod into an error for that
// pod, so that no pod, however malformed, takes the other pods (and quartet)
// down with it.
func (h *Host) syncPodSafely(ctx context.Context, uid types.UID) (requeue time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while syncing pod %s: %v\n%s", uid, r, debug.Stack())
		}
	}()
	return h.syncPod(ctx, uid)
}

package daemonset

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// expectationsTimeout is how long a set waits for writes it never sees
// before it acts again anyway (a lost watch event must not stall it forever).
const expectationsTimeout = 5 * time.Minute

// expectations remember, per set, the pod creates and deletes the controller
// has sent but not yet seen come back through the pod informer. While any are
// outstanding the set's cache view is stale, and acting on it would create a
// second pod on a node or delete one twice; sync then only reports status.
//
// Deletes are tracked by pod key, so a pod seen first with a deletion
// timestamp and then gone counts once.
type expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	sets  map[string]*pending
}

type pending struct {
	creates int
	deletes map[string]bool
	since   time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, sets: map[string]*pending{}}
}

// expect records, before they are sent, the writes of one sync.
func (e *expectations) expect(set string, creates int, deletes []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := &pending{creates: creates, deletes: make(map[string]bool, len(deletes)), since: e.clock.Now()}
	for _, d := range deletes {
		p.deletes[d] = true
	}
	e.sets[set] = p
}

// created is called for each new pod of the set the informer delivers, and
// for each create that failed or was never sent.
func (e *expectations) created(set string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.sets[set]; p != nil {
		p.creates -= n
	}
}

// deleted is called when the informer shows pod (namespace/name) going away,
// and when a delete of it failed.
func (e *expectations) deleted(set, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.sets[set]; p != nil {
		delete(p.deletes, pod)
	}
}

// satisfied reports whether sync may act on the set.
func (e *expectations) satisfied(set string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.sets[set]
	if p == nil {
		return true
	}
	if p.creates <= 0 && len(p.deletes) == 0 {
		return true
	}
	return e.clock.Since(p.since) > expectationsTimeout
}

// forget drops what is known about a deleted set.
func (e *expectations) forget(set string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sets, set)
}

package job

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// jobMemory is what the controller remembers about one Job between syncs
// besides its own writes (kit.OwnWrites holds those). None of it is needed
// for correctness after a restart: the finalizers and the status carry the
// truth.
type jobMemory struct {
	backoff backoffRecord
	// finishedSinceSync counts pods seen finishing since the last sync.
	finishedSinceSync int32
	// createBatch is the first window of the next pod creations.
	createBatch int
}

// memory is the controller's memory of all Jobs, by UID: a Job recreated
// under the same name starts afresh.
type memory struct {
	mu   sync.Mutex
	jobs map[types.UID]*jobMemory
}

func newMemory() *memory {
	return &memory{jobs: map[types.UID]*jobMemory{}}
}

// entry returns the Job's memory. The caller holds m.mu.
func (m *memory) entry(uid types.UID) *jobMemory {
	e := m.jobs[uid]
	if e == nil {
		e = &jobMemory{createBatch: slowStartInitialBatch}
		m.jobs[uid] = e
	}
	return e
}

func (m *memory) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, uid)
}

// syncing starts a sync of the Job: it resets the count of pods finished
// since the last one and returns what the last syncs left.
func (m *memory) syncing(uid types.UID) jobMemory {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(uid)
	e.finishedSinceSync = 0
	return *e
}

func (m *memory) setBackoff(uid types.UID, b backoffRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(uid).backoff = b
}

// podFinished counts a pod of the Job that reached a terminal phase and
// reports whether enough have finished since the last sync to sync now.
func (m *memory) podFinished(uid types.UID, enough int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(uid)
	e.finishedSinceSync++
	return e.finishedSinceSync == enough
}

func (m *memory) setCreateBatch(uid types.UID, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(uid).createBatch = min(n, maxPodWritesPerSync)
}

package job

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// jobMemory is what the controller remembers of a Job between syncs besides
// its own writes (kit.OwnWrites holds those). None of it is needed for
// correctness after a restart: the finalizers and the status carry the truth.
type jobMemory struct {
	backoff backoffRecord
	// finishedSinceSync counts pods seen finishing since the last sync.
	finishedSinceSync int32
	// createBatch is the first window of the next pod creations, 1 for a
	// Job's first.
	createBatch int
}

// memory is the controller's memory of all Jobs, by UID: a Job recreated
// under the same name starts afresh.
type memory struct {
	mu   sync.Mutex
	jobs map[types.UID]*jobMemory
}

// update calls fn on the Job's memory under the lock and returns what fn left.
func (m *memory) update(uid types.UID, fn func(*jobMemory)) jobMemory {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.jobs[uid]
	if e == nil {
		e = &jobMemory{createBatch: 1}
		m.jobs[uid] = e
	}
	fn(e)
	return *e
}

func (m *memory) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, uid)
}

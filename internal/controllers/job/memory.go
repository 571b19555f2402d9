package job

import (
	"sync"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
)

// expectationsTTL is how long the controller waits to see its own pod
// writes before it stops trusting that they will show up, as upstream does.
const expectationsTTL = 5 * time.Minute

// jobMemory is what the controller remembers about one Job between syncs.
// None of it is needed for correctness after a restart: the finalizers and
// status carry the truth, this only avoids acting on a stale cache.
type jobMemory struct {
	uid types.UID

	// Pod writes issued but not yet visible in the informer cache, by pod
	// uid.
	creates, deletes, finalizers map[types.UID]struct{}
	// waitingSince is when the latest create or delete was issued.
	waitingSince time.Time

	backoff backoffRecord

	// writtenRV is the resourceVersion of this controller's latest status
	// write; skipped says a sync was skipped until the cache shows it.
	writtenRV string
	skipped   bool

	// finishedSinceSync counts pods seen finishing since the last sync.
	finishedSinceSync int32

	// warnedBackoff is the annotation text last warned about.
	warnedBackoff string

	// createBatch is the first batch size of the next pod creations.
	createBatch int
}

// memory is the controller's memory of all Jobs, keyed by namespace/name.
// A Job recreated under the same name (a new uid) starts afresh.
type memory struct {
	mu   sync.Mutex
	jobs map[string]*jobMemory
}

func newMemory() *memory {
	return &memory{jobs: map[string]*jobMemory{}}
}

// entry returns the Job's memory, replacing that of a previous Job of the
// same name. The caller holds m.mu.
func (m *memory) entry(key string, uid types.UID) *jobMemory {
	e := m.jobs[key]
	if e == nil || e.uid != uid {
		e = &jobMemory{uid: uid}
		m.jobs[key] = e
	}
	return e
}

func (m *memory) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, key)
}

// snapshot is what a sync takes from memory.
type snapshot struct {
	settled       bool
	finalizerGone map[types.UID]struct{}
	backoff       backoffRecord
}

// reconcile drops the expectations the pods now confirm and returns what
// the sync needs.
func (m *memory) reconcile(key string, job *batch.Job, pods []*v1.Pod, now time.Time) snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(key, job.UID)
	e.finishedSinceSync = 0
	if len(e.creates)+len(e.deletes)+len(e.finalizers) > 0 {
		byUID := make(map[types.UID]*v1.Pod, len(pods))
		for _, p := range pods {
			byUID[p.UID] = p
		}
		for uid := range e.creates {
			if _, seen := byUID[uid]; seen {
				delete(e.creates, uid)
			}
		}
		for uid := range e.deletes {
			if p, seen := byUID[uid]; !seen || p.DeletionTimestamp != nil {
				delete(e.deletes, uid)
			}
		}
		for uid := range e.finalizers {
			if p, seen := byUID[uid]; !seen || !hasTrackingFinalizer(p) {
				delete(e.finalizers, uid)
			}
		}
	}
	pending := len(e.creates)+len(e.deletes) > 0
	if pending && now.Sub(e.waitingSince) > expectationsTTL {
		e.creates, e.deletes = nil, nil
		pending = false
	}
	var gone map[types.UID]struct{}
	if len(e.finalizers) > 0 {
		gone = make(map[types.UID]struct{}, len(e.finalizers))
		for uid := range e.finalizers {
			gone[uid] = struct{}{}
		}
	}
	return snapshot{settled: !pending, finalizerGone: gone, backoff: e.backoff}
}

func addUIDs(set *map[types.UID]struct{}, uids []types.UID) {
	if len(uids) == 0 {
		return
	}
	if *set == nil {
		*set = make(map[types.UID]struct{}, len(uids))
	}
	for _, u := range uids {
		(*set)[u] = struct{}{}
	}
}

// expectPodWrites records pods created, deleted and stripped of their
// finalizer, to wait for until the cache shows them.
func (m *memory) expectPodWrites(key string, uid types.UID, created, deleted, finalizersGone []types.UID, now time.Time) {
	if len(created)+len(deleted)+len(finalizersGone) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(key, uid)
	addUIDs(&e.creates, created)
	addUIDs(&e.deletes, deleted)
	addUIDs(&e.finalizers, finalizersGone)
	if len(created)+len(deleted) > 0 {
		e.waitingSince = now
	}
}

func (m *memory) setBackoff(key string, uid types.UID, b backoffRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(key, uid).backoff = b
}

// wrote records the resourceVersion of a status write.
func (m *memory) wrote(key string, job *batch.Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(key, job.UID).writtenRV = job.ResourceVersion
}

// isNewer reports whether resourceVersion rv is at least written; versions
// that cannot be compared count as newer.
func isNewer(rv, written string) bool {
	if written == "" {
		return true
	}
	cmp, err := resourceversion.CompareResourceVersion(rv, written)
	return err != nil || cmp >= 0
}

// caughtUp reports whether the cached Job already shows this controller's
// latest status write. When it does not, the sync is skipped and the Job's
// update event brings it back.
func (m *memory) caughtUp(key string, job *batch.Job) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.jobs[key]
	if e == nil || e.uid != job.UID || isNewer(job.ResourceVersion, e.writtenRV) {
		return true
	}
	e.skipped = true
	return false
}

// observedJob is called for each Job update event; it reports whether a
// sync skipped for a stale cache can run now.
func (m *memory) observedJob(key string, job *batch.Job) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.jobs[key]
	if e == nil || e.uid != job.UID || !e.skipped || !isNewer(job.ResourceVersion, e.writtenRV) {
		return false
	}
	e.skipped = false
	return true
}

// podFinished counts a pod of the Job that reached a terminal phase and
// reports whether enough have finished since the last sync to sync now.
func (m *memory) podFinished(key string, uid types.UID, enough int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(key, uid)
	e.finishedSinceSync++
	return e.finishedSinceSync == enough
}

// warnBackoffOnce reports whether the problems text is new for this Job.
func (m *memory) warnBackoffOnce(key string, uid types.UID, text string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(key, uid)
	if e.warnedBackoff == text {
		return false
	}
	e.warnedBackoff = text
	return true
}

// createBatch is where the Job's next slow start begins.
func (m *memory) createBatch(key string, uid types.UID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.entry(key, uid).createBatch, slowStartInitialBatch)
}

func (m *memory) setCreateBatch(key string, uid types.UID, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(key, uid).createBatch = min(n, maxPodWritesPerSync)
}

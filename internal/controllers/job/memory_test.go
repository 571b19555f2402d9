package job

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestMemoryPodFinishedThreshold(t *testing.T) {
	m := &memory{jobs: map[types.UID]*jobMemory{}}
	job := newTestJob(10, 4)
	finished := func() bool {
		return m.update(job.UID, func(e *jobMemory) { e.finishedSinceSync++ }).finishedSinceSync == syncThreshold(job)
	}
	var triggers []bool
	for range 3 {
		triggers = append(triggers, finished())
	}
	if triggers[0] || !triggers[1] || triggers[2] {
		t.Errorf("triggers = %v, want only the second (half of parallelism 4)", triggers)
	}
	m.update(job.UID, func(e *jobMemory) { e.finishedSinceSync = 0 })
	if finished() {
		t.Errorf("a sync did not reset the count")
	}
	if got := syncThreshold(newTestJob(1, 1)); got != 1 {
		t.Errorf("threshold of parallelism 1 = %d", got)
	}
}

func TestMemoryOfARecreatedJob(t *testing.T) {
	job := newTestJob(1, 1)
	m := &memory{jobs: map[types.UID]*jobMemory{}}
	m.update(job.UID, func(e *jobMemory) {
		e.backoff = backoffRecord{failures: 3, lastFailure: testNow}
		e.createBatch = 64
	})
	if got := m.update(job.UID, func(*jobMemory) {}); got.backoff.failures != 3 || got.createBatch != 64 {
		t.Errorf("memory = %+v", got)
	}
	if got := m.update("new-uid", func(*jobMemory) {}); got.backoff.failures != 0 || got.createBatch != 1 {
		t.Errorf("a new Job of the same name inherits %+v", got)
	}
	m.forget(job.UID)
	if got := m.update(job.UID, func(*jobMemory) {}); got.backoff.failures != 0 {
		t.Errorf("forgotten memory kept %+v", got)
	}
}

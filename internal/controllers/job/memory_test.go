package job

import (
	"testing"
)

func TestMemoryPodFinishedThreshold(t *testing.T) {
	m := newMemory()
	job := newTestJob(10, 4)
	var triggers []bool
	for range 3 {
		triggers = append(triggers, m.podFinished(job.UID, syncThreshold(job)))
	}
	if triggers[0] || !triggers[1] || triggers[2] {
		t.Errorf("triggers = %v, want only the second (half of parallelism 4)", triggers)
	}
	m.syncing(job.UID)
	if m.podFinished(job.UID, 2) {
		t.Errorf("a sync did not reset the count")
	}
	if got := syncThreshold(newTestJob(1, 1)); got != 1 {
		t.Errorf("threshold of parallelism 1 = %d", got)
	}
}

func TestMemoryOfARecreatedJob(t *testing.T) {
	job := newTestJob(1, 1)
	m := newMemory()
	m.setBackoff(job.UID, backoffRecord{failures: 3, lastFailure: testNow})
	m.setCreateBatch(job.UID, 64)
	if got := m.syncing(job.UID); got.backoff.failures != 3 || got.createBatch != 64 {
		t.Errorf("memory = %+v", got)
	}
	m.setCreateBatch(job.UID, 10*maxPodWritesPerSync)
	if got := m.syncing(job.UID).createBatch; got != maxPodWritesPerSync {
		t.Errorf("createBatch = %d, want at most %d", got, maxPodWritesPerSync)
	}
	if got := m.syncing("new-uid"); got.backoff.failures != 0 || got.createBatch != 1 {
		t.Errorf("a new Job of the same name inherits %+v", got)
	}
	m.forget(job.UID)
	if got := m.syncing(job.UID); got.backoff.failures != 0 {
		t.Errorf("forgotten memory kept %+v", got)
	}
}

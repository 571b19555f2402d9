package job

import (
	"testing"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestMemoryExpectations(t *testing.T) {
	job := newTestJob(3, 3)
	m := newMemory()
	key := "default/pi"
	m.expectPodWrites(key, job.UID, []types.UID{"new-1", "new-2"}, []types.UID{"old"}, []types.UID{"done"}, testNow)

	old := newTestPod(job, "old", v1.PodRunning)
	done := newTestPod(job, "done", v1.PodSucceeded)
	new1 := newTestPod(job, "new-1", v1.PodPending)

	// The cache shows one creation, not the deletion, and the finalizer
	// still on "done".
	snap := m.reconcile(key, job, []*v1.Pod{old, done, new1}, testNow)
	if snap.settled {
		t.Errorf("settled with a creation and a deletion unseen")
	}
	if _, ok := snap.finalizerGone["done"]; !ok {
		t.Errorf("finalizerGone = %v, want done", snap.finalizerGone)
	}

	// Now everything shows.
	new2 := newTestPod(job, "new-2", v1.PodPending)
	gone := old.DeepCopy()
	gone.DeletionTimestamp = ptr.To(metav1.NewTime(testNow))
	released := done.DeepCopy()
	released.Finalizers = nil
	snap = m.reconcile(key, job, []*v1.Pod{gone, released, new1, new2}, testNow)
	if !snap.settled || len(snap.finalizerGone) != 0 {
		t.Errorf("snapshot = %+v, want settled and no pending finalizers", snap)
	}

	// A deleted pod that is gone from the cache counts as seen.
	m.expectPodWrites(key, job.UID, nil, []types.UID{"vanished"}, nil, testNow)
	if snap = m.reconcile(key, job, nil, testNow); !snap.settled {
		t.Errorf("a vanished deleted pod keeps the Job unsettled")
	}
}

func TestMemoryExpectationsExpire(t *testing.T) {
	job := newTestJob(1, 1)
	m := newMemory()
	m.expectPodWrites("default/pi", job.UID, []types.UID{"lost"}, nil, nil, testNow)
	if m.reconcile("default/pi", job, nil, testNow.Add(expectationsTTL)).settled {
		t.Errorf("settled before the expectations expired")
	}
	if !m.reconcile("default/pi", job, nil, testNow.Add(expectationsTTL+time.Second)).settled {
		t.Errorf("not settled after the expectations expired")
	}
}

func TestMemoryForgetsARecreatedJob(t *testing.T) {
	job := newTestJob(1, 1)
	m := newMemory()
	m.expectPodWrites("default/pi", job.UID, []types.UID{"lost"}, nil, nil, testNow)
	m.setBackoff("default/pi", job.UID, backoffRecord{failures: 3, lastFailure: testNow})
	m.setCreateBatch("default/pi", job.UID, 64)

	again := job.DeepCopy()
	again.UID = "new-uid"
	snap := m.reconcile("default/pi", again, nil, testNow)
	if !snap.settled || snap.backoff.failures != 0 {
		t.Errorf("a new Job of the same name inherits %+v", snap)
	}
	if got := m.createBatch("default/pi", again.UID); got != 1 {
		t.Errorf("createBatch = %d, want 1", got)
	}
}

func TestMemoryCaughtUp(t *testing.T) {
	m := newMemory()
	job := newTestJob(1, 1)
	job.ResourceVersion = "100"
	if !m.caughtUp("default/pi", job) {
		t.Errorf("a Job never written is not caught up")
	}
	m.wrote("default/pi", &batch.Job{ObjectMeta: metav1.ObjectMeta{UID: job.UID, ResourceVersion: "120"}})
	if m.caughtUp("default/pi", job) {
		t.Errorf("RV 100 counts as caught up with a write at 120")
	}
	newer := job.DeepCopy()
	newer.ResourceVersion = "119"
	if m.observedJob("default/pi", newer) {
		t.Errorf("RV 119 released the skipped sync")
	}
	newer.ResourceVersion = "120"
	if !m.observedJob("default/pi", newer) || !m.caughtUp("default/pi", newer) {
		t.Errorf("RV 120 does not catch up")
	}
	other := job.DeepCopy()
	other.UID = "other"
	if !m.caughtUp("default/pi", other) {
		t.Errorf("another Job of the same name waits for the old one's write")
	}
}

func TestMemoryPodFinishedThreshold(t *testing.T) {
	m := newMemory()
	job := newTestJob(10, 4)
	var triggers []bool
	for range 3 {
		triggers = append(triggers, m.podFinished("default/pi", job.UID, syncThreshold(job)))
	}
	if triggers[0] || !triggers[1] || triggers[2] {
		t.Errorf("triggers = %v, want only the second (half of parallelism 4)", triggers)
	}
	m.reconcile("default/pi", job, nil, testNow)
	if m.podFinished("default/pi", job.UID, 2) {
		t.Errorf("a sync did not reset the count")
	}
	if got := syncThreshold(newTestJob(1, 1)); got != 1 {
		t.Errorf("threshold of parallelism 1 = %d", got)
	}
}

func TestMemoryWarnsOnce(t *testing.T) {
	m := newMemory()
	if !m.warnBackoffOnce("default/pi", "u", "bad") || m.warnBackoffOnce("default/pi", "u", "bad") || !m.warnBackoffOnce("default/pi", "u", "worse") {
		t.Errorf("warnings not once per distinct text")
	}
}

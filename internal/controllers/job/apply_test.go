package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/controllers/kit"
)

func podsToCreate(n int) *decision {
	job := newTestJob(int32(n), int32(n))
	return decide(&observed{job: job, now: testNow, settled: true, retry: defaultRetry})
}

// testApplier writes through w and remembers its pod writes against store.
func testApplier(w kit.PodWriter, store cache.Store) *applier {
	return &applier{pods: w, writes: kit.NewOwnWrites(clock.RealClock{}, map[string]kit.Store{"pods": store})}
}

func TestCreatePodsSlowStart(t *testing.T) {
	cases := map[string]struct {
		pods     int
		first    int
		failAt   int // 1-based creation attempt that fails; 0 for none
		wantNext int
	}{
		"from one":                 {pods: 10, first: 1, wantNext: 11},
		"from where it left off":   {pods: 10, first: 8, wantNext: 18},
		"up to the concurrency":    {pods: 500, first: 64, wantNext: writeConcurrency},
		"a failure stops the rest": {pods: 10, first: 1, failAt: 2, wantNext: 1},
		"the first one fails":      {pods: 10, first: 1, failAt: 1, wantNext: 1},
		"a failure in a big batch": {pods: 100, first: 64, failAt: 10, wantNext: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			calls := 0
			w := &fakePodWriter{createErr: func(*v1.Pod) error {
				calls++
				if calls == tc.failAt {
					return errors.New("quota exceeded")
				}
				return nil
			}}
			var out outcome
			nextBatch, err := testApplier(w, cache.NewStore(cache.MetaNamespaceKeyFunc)).createPods(context.Background(), newTestJob(1, 1), podsToCreate(tc.pods), tc.first, &out)
			created := len(w.created)
			if int(out.createsFailed) != tc.pods-created || nextBatch != tc.wantNext {
				t.Errorf("created %d, createsFailed %d, nextBatch %d; want nextBatch %d", created, out.createsFailed, nextBatch, tc.wantNext)
			}
			switch {
			case tc.failAt == 0 && (calls != tc.pods || created != tc.pods):
				t.Errorf("calls %d created %d, want all %d", calls, created, tc.pods)
			case tc.failAt > 0 && (created != calls-1 || calls > max(tc.first, 2*created+1)):
				// After the failure no call starts: the calls already in
				// flight, at most the first window or about twice the
				// successes, are all.
				t.Errorf("calls %d created %d after a failure at %d", calls, created, tc.failAt)
			}
			if (tc.failAt > 0) != (err != nil) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestCreatePodsNamespaceTerminating(t *testing.T) {
	terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("namespace is being terminated"))
	terminating.ErrStatus.Details = &metav1StatusDetails
	w := &fakePodWriter{createErr: func(*v1.Pod) error { return terminating }}
	var out outcome
	_, err := testApplier(w, cache.NewStore(cache.MetaNamespaceKeyFunc)).createPods(context.Background(), newTestJob(1, 1), podsToCreate(4), 1, &out)
	if err != nil || out.createsFailed != 4 {
		t.Errorf("err %v createsFailed %d, want no error and 4 not created", err, out.createsFailed)
	}
}

func TestDeletePods(t *testing.T) {
	job := newTestJob(3, 3)
	a := newTestPod(job, "a", v1.PodRunning, ready)
	b := newTestPod(job, "b", v1.PodRunning)
	c := newTestPod(job, "c", v1.PodRunning)
	w := &fakePodWriter{
		deleteErr: func(name string) error {
			switch name {
			case "a":
				return errors.New("boom")
			case "c":
				return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "c")
			}
			return nil
		},
	}
	// The cache still holds c: the Job waits for its deletion to show.
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	if err := store.Add(c); err != nil {
		t.Fatal(err)
	}
	ap := testApplier(w, store)
	var out outcome
	d := &decision{deletes: []podDelete{{pod: a, dropFinalizer: true}, {pod: b, dropFinalizer: true}, {pod: c}}}
	err := ap.deletePods(context.Background(), job, d, &out)
	if out.deletesFailed != 1 || out.readyDeletesFailed != 1 || err == nil {
		t.Errorf("failed %d ready %d err %v", out.deletesFailed, out.readyDeletesFailed, err)
	}
	if !slices.Equal(w.deleted, []string{"b"}) || ap.writes.Seen(job.UID, "pods") {
		t.Errorf("deleted %v, seen %v; want b deleted and c (already gone) remembered as deleted", w.deleted, ap.writes.Seen(job.UID, "pods"))
	}
	slices.Sort(w.patched)
	if !slices.Equal(w.patched, []string{"a", "b"}) {
		t.Errorf("finalizers dropped before deleting: %v, want a and b", w.patched)
	}
}

func TestDropFinalizers(t *testing.T) {
	job := newTestJob(3, 3)
	var pods []*v1.Pod
	for i := range 5 {
		pods = append(pods, newTestPod(job, fmt.Sprint("p", i), v1.PodSucceeded))
	}
	w := &fakePodWriter{patchErr: func(name string) error {
		switch name {
		case "p1":
			return errors.New("conflict")
		case "p2":
			return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "p2")
		}
		return nil
	}}
	dropped, err := testApplier(w, cache.NewStore(cache.MetaNamespaceKeyFunc)).dropFinalizers(context.Background(), job, pods)
	var names []string
	for _, p := range pods {
		if dropped.Has(p.UID) {
			names = append(names, p.Name)
		}
	}
	if err == nil || !slices.Equal(names, []string{"p0", "p2", "p3", "p4"}) {
		t.Errorf("dropped %v err %v, want all but p1 (p2 is gone, which counts)", names, err)
	}
	for _, patch := range w.patches {
		if patch != `{"metadata":{"$deleteFromPrimitiveList/finalizers":["batch.kubernetes.io/job-tracking"]}}` {
			t.Errorf("patch = %s", patch)
		}
	}
}

var metav1StatusDetails = metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: v1.NamespaceTerminatingCause}}}

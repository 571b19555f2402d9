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
)

func podsToCreate(n int) []*v1.Pod {
	job := newTestJob(int32(n), int32(n))
	d := decide(&observed{job: job, now: testNow, settled: true, retry: defaultRetry})
	return d.creates
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
			res := createPods(context.Background(), w, newTestJob(1, 1), podsToCreate(tc.pods), tc.first)
			created := len(res.created)
			if int(res.notCreated) != tc.pods-created || res.nextBatch != tc.wantNext {
				t.Errorf("created %d, notCreated %d, nextBatch %d; want nextBatch %d", created, res.notCreated, res.nextBatch, tc.wantNext)
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
			if (tc.failAt > 0) != (res.err != nil) {
				t.Errorf("err = %v", res.err)
			}
		})
	}
}

func TestCreatePodsNamespaceTerminating(t *testing.T) {
	terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("namespace is being terminated"))
	terminating.ErrStatus.Details = &metav1StatusDetails
	w := &fakePodWriter{createErr: func(*v1.Pod) error { return terminating }}
	res := createPods(context.Background(), w, newTestJob(1, 1), podsToCreate(4), 1)
	if res.err != nil || res.notCreated != 4 {
		t.Errorf("err %v notCreated %d, want no error and 4 not created", res.err, res.notCreated)
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
	res := deletePods(context.Background(), w, job, []podDelete{{pod: a, dropFinalizer: true}, {pod: b, dropFinalizer: true}, {pod: c}})
	if res.failed != 1 || res.failedReady != 1 || res.err == nil {
		t.Errorf("failed %d ready %d err %v", res.failed, res.failedReady, res.err)
	}
	got := make([]string, len(res.deleted))
	for i, p := range res.deleted {
		got[i] = string(p.UID)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("deleted %v, want b and c (already gone)", got)
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
	dropped, err := dropFinalizers(context.Background(), w, pods)
	var names []string
	for _, p := range dropped {
		names = append(names, p.Name)
	}
	slices.Sort(names)
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

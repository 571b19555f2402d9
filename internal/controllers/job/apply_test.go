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
	d := decide(&syncInput{job: job, now: testNow, settled: true, retry: defaultRetry})
	return d.creates
}

func TestCreatePodsSlowStart(t *testing.T) {
	cases := map[string]struct {
		pods      int
		first     int
		failAt    int // 1-based creation attempt that fails; 0 for none
		wantCalls int
		wantNot   int32
		wantNext  int
	}{
		"from one":                 {pods: 10, first: 1, wantCalls: 10, wantNext: 4},
		"from where it left off":   {pods: 10, first: 8, wantCalls: 10, wantNext: 8},
		"a failure stops the rest": {pods: 10, first: 1, failAt: 2, wantCalls: 3, wantNot: 8, wantNext: 1},
		"the first one fails":      {pods: 10, first: 1, failAt: 1, wantCalls: 1, wantNot: 10, wantNext: 1},
		"a failure in a big batch": {pods: 100, first: 64, failAt: 10, wantCalls: 64, wantNot: 37, wantNext: 1},
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
			if calls != tc.wantCalls || res.notCreated != tc.wantNot || res.nextBatch != tc.wantNext {
				t.Errorf("calls %d notCreated %d nextBatch %d, want %d %d %d", calls, res.notCreated, res.nextBatch, tc.wantCalls, tc.wantNot, tc.wantNext)
			}
			if (tc.failAt > 0) != (res.err != nil) {
				t.Errorf("err = %v", res.err)
			}
			if len(res.created) != tc.wantCalls-min(tc.failAt, 1) {
				t.Errorf("created %d", len(res.created))
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
		deleteErr: func(p *v1.Pod) error {
			switch p.Name {
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
	for i, u := range res.deleted {
		got[i] = string(u)
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
	w := &fakePodWriter{patchErr: func(p *v1.Pod) error {
		switch p.Name {
		case "p1":
			return errors.New("conflict")
		case "p2":
			return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "p2")
		}
		return nil
	}}
	dropped, err := dropFinalizers(context.Background(), w, pods)
	if err == nil || len(dropped) != 4 || dropped["p1"] {
		t.Errorf("dropped %v err %v, want all but p1 (p2 is gone, which counts)", dropped, err)
	}
	for _, patch := range w.patches {
		if patch != `{"metadata":{"$deleteFromPrimitiveList/finalizers":["batch.kubernetes.io/job-tracking"]}}` {
			t.Errorf("patch = %s", patch)
		}
	}
}

var metav1StatusDetails = metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: v1.NamespaceTerminatingCause}}}

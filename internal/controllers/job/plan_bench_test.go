package job

import (
	"fmt"
	"testing"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// benchState is a Job of 5,000 completions at parallelism 200 midway: 4,700
// pods counted, 100 just succeeded, 200 running.
func benchState(indexedJob bool) (*batch.Job, []*v1.Pod) {
	opts := []jobOpt{startedAt(ago(0))}
	if indexedJob {
		opts = append(opts, indexed)
	}
	job := newTestJob(5000, 200, opts...)
	var pods []*v1.Pod
	add := func(i int, phase v1.PodPhase, extra ...podOpt) {
		if indexedJob {
			extra = append(extra, atIndex(i))
		}
		pods = append(pods, newTestPod(job, fmt.Sprintf("pi-%05d", i), phase, extra...))
	}
	for i := range 4700 {
		add(i, v1.PodSucceeded, noFinalizer)
	}
	for i := 4700; i < 4800; i++ {
		add(i, v1.PodSucceeded)
	}
	for i := 4800; i < 5000; i++ {
		add(i, v1.PodRunning, ready)
	}
	job.Status.Succeeded = 4700
	if indexedJob {
		job.Status.CompletedIndexes = "0-4699"
	}
	job.Status.Active = 300
	return job, pods
}

func benchmarkPlan(b *testing.B, indexedJob bool) {
	job, pods := benchState(indexedJob)
	in := &observed{job: job, pods: pods, now: testNow, settled: true, retry: defaultRetry}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := decide(in)
		t := d.track(outcome{})
		dropped := make(sets.Set[types.UID], len(t.dropFinalizers))
		for _, p := range t.dropFinalizers {
			dropped.Insert(p.UID)
		}
		s := t.settle(dropped)
		if len(t.dropFinalizers) != 100 || s.status.Succeeded != 4800 {
			b.Fatalf("drops %d succeeded %d", len(t.dropFinalizers), s.status.Succeeded)
		}
	}
}

// BenchmarkPlan5000Pods is one sync of a 5,000-pod NonIndexed Job.
func BenchmarkPlan5000Pods(b *testing.B) { benchmarkPlan(b, false) }

// BenchmarkPlan5000PodsIndexed is the same Job in Indexed mode.
func BenchmarkPlan5000PodsIndexed(b *testing.B) { benchmarkPlan(b, true) }

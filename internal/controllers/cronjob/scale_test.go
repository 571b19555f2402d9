package cronjob

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
)

// TestManyCronJobsOnTheMinute runs 1,000 every-minute CronJobs through one
// scheduled time on the fake clientset: each gets exactly one Job and one
// status write from a single timer wake-up, and the controller makes no LIST
// call beyond the informers' own two.
func TestManyCronJobsOnTheMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	const n = 1000
	minute := utc("2026-05-19T10:00:00Z")
	var objs []runtime.Object
	for i := range n {
		cj := newCronJob(scheduled("*/1 * * * *"), createdAt(minute.Add(-30*time.Second)))
		cj.Name = fmt.Sprintf("cj-%04d", i)
		cj.UID = types.UID("uid-" + cj.Name)
		objs = append(objs, cj)
	}
	e := newTestEnv(t, minute.Add(-20*time.Second), objs...)
	e.record(record.NewFakeRecorder(4 * n)) // room for every event
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); e.factory.Shutdown(); <-done })
	q := e.recordQueue(2 * n)
	e.factory.Start(ctx.Done())
	go func() { defer close(done); e.c.Run(ctx, 20) }()

	// Every CronJob's first sync finds nothing due and sleeps until the minute.
	for range n {
		waitForRequeue(t, q, 20*time.Second+requeueDelay)
	}
	start := time.Now()
	e.clock.Step(20*time.Second + requeueDelay)
	// Read through the caches, so that the test's own reads are not API calls.
	waitFor(t, "a Job for every CronJob", func() bool { return len(e.c.jobs.List()) == n })
	t.Logf("%d Jobs created %v after the wake-up (fake API server)", n, time.Since(start))
	waitFor(t, "every status written", func() bool {
		for _, obj := range e.c.cronJobs.List() {
			cj := obj.(*batchv1.CronJob)
			if len(cj.Status.Active) != 1 || cj.Status.LastScheduleTime == nil || !cj.Status.LastScheduleTime.Time.Equal(minute) {
				return false
			}
		}
		return true
	})
	verbs := map[string]int{}
	for _, a := range e.client.Actions() {
		verbs[a.GetVerb()+" "+a.GetResource().Resource+" "+a.GetSubresource()]++
	}
	want := map[string]int{"create jobs ": n, "update cronjobs status": n, "list cronjobs ": 1, "list jobs ": 1}
	for k, v := range want {
		if verbs[k] != v {
			t.Errorf("%q: %d calls, want %d (all calls: %v)", k, verbs[k], v, verbs)
		}
	}
	for k := range verbs {
		if _, ok := want[k]; !ok && k != "watch cronjobs " && k != "watch jobs " && k != "get cronjobs " {
			t.Errorf("unexpected calls %q: %d", k, verbs[k])
		}
	}
}

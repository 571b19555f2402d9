package cronjob

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

type testEnv struct {
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	clock   *clocktesting.FakeClock
	c       *Controller
	rec     *record.FakeRecorder
	// events is the controller's own recorder, which records to the API.
	events record.EventRecorder
}

// newTestEnv builds the controller on a fake clientset holding objs. The
// informers are not started: tests either fill their caches by hand (to
// make the cache disagree with the API server) or start them.
func newTestEnv(t *testing.T, now time.Time, objs ...runtime.Object) *testEnv {
	t.Helper()
	client := kittest.NewAPI(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(now)
	c, err := New(kit.Config{Client: client, Informers: factory, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	c.local = time.UTC
	e := &testEnv{client: client, factory: factory, clock: clk, c: c, rec: record.NewFakeRecorder(100), events: c.Recorder}
	e.record(e.rec)
	return e
}

// record makes the controller record its events with rec.
func (e *testEnv) record(rec record.EventRecorder) {
	e.c.Recorder, e.c.apply.recorder = rec, rec
}

// recordTo wraps the controller's queue in a recordingQueue.
func (e *testEnv) recordQueue(size int) *recordingQueue {
	q := &recordingQueue{TypedRateLimitingInterface: e.c.queue.TypedRateLimitingInterface, after: make(chan time.Duration, size)}
	e.c.queue.TypedRateLimitingInterface = q
	return q
}

// cache puts objects in the informer caches without the API server.
func (e *testEnv) cache(t *testing.T, objs ...runtime.Object) {
	t.Helper()
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *batchv1.CronJob:
			err = e.factory.Batch().V1().CronJobs().Informer().GetIndexer().Add(o)
		case *batchv1.Job:
			err = e.factory.Batch().V1().Jobs().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (e *testEnv) statusWrites() []batchv1.CronJobStatus {
	var out []batchv1.CronJobStatus
	for _, a := range e.client.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "cronjobs" && a.GetSubresource() == "status" {
			out = append(out, a.(k8stesting.UpdateAction).GetObject().(*batchv1.CronJob).Status)
		}
	}
	return out
}

func (e *testEnv) verbs(resource string) []string {
	var out []string
	for _, a := range e.client.Actions() {
		if a.GetResource().Resource == resource && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			out = append(out, a.GetVerb())
		}
	}
	return out
}

// TestSync drives sync against caches that disagree with the API server in
// the ways a real cluster's do.
func TestSync(t *testing.T) {
	now := utc("2026-05-19T10:00:00.2Z")
	prev := jobAt(prevHour)
	manual := namedJob("backup-manual")
	scheduledName := minutes(topOfHour)
	cases := map[string]struct {
		cached     []runtime.Object // informer caches
		api        []runtime.Object // the API server
		wantEvents []string
		wantActive []string // from the last status write; nil means no write
		wantVerbs  map[string][]string
		wantJobs   int
		// ownStatusUnseen: this controller wrote the CronJob's status and
		// the cache has not shown it yet.
		ownStatusUnseen bool
	}{
		"its own status write the cache has not seen yet: waits for its event, no GET": {
			cached:          []runtime.Object{newCronJob(lastScheduled(prevHour)), prev},
			api:             []runtime.Object{newCronJob(lastScheduled(prevHour), listing(prev)), prev},
			ownStatusUnseen: true,
			wantVerbs:       map[string][]string{},
		},
		"creates the Job for the scheduled time": {
			cached:     []runtime.Object{newCronJob()},
			api:        []runtime.Object{newCronJob()},
			wantEvents: []string{normal + kit.ReasonSuccessfulCreate},
			wantActive: []string{scheduledName},
			wantVerbs:  map[string][]string{"jobs": {"create"}, "cronjobs": {"update"}},
		},
		"no Job when the CronJob is gone": {
			wantVerbs: map[string][]string{},
		},
		"status write the cache has not seen yet: no UnexpectedJob": {
			cached:    []runtime.Object{newCronJob(lastScheduled(prevHour)), prev},
			api:       []runtime.Object{newCronJob(lastScheduled(prevHour), listing(prev)), prev},
			wantVerbs: map[string][]string{"cronjobs": {"get", "update"}, "jobs": {"create"}},
			// The fresh CronJob lists prev, so the new Job joins it.
			wantEvents: []string{normal + kit.ReasonSuccessfulCreate},
			wantActive: []string{prev.Name, scheduledName},
		},
		"a Job nobody recorded: UnexpectedJob": {
			cached:     []runtime.Object{newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(topOfHour)), manual},
			api:        []runtime.Object{newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(topOfHour)), manual},
			wantVerbs:  map[string][]string{"cronjobs": {"get"}},
			wantEvents: []string{warning + reasonUnexpectedJob},
		},
		"an active Job the cache lost but the API server has stays active": {
			cached:    []runtime.Object{newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(prev))},
			api:       []runtime.Object{newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(prev)), prev},
			wantVerbs: map[string][]string{"jobs": {"get"}},
			// Forbid: the Job the API server confirmed blocks the new run.
			wantEvents: []string{normal + ReasonJobAlreadyActive},
		},
		"an active Job that is really gone: MissingJob, and the run starts": {
			cached:     []runtime.Object{newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(prev))},
			api:        []runtime.Object{newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(prev))},
			wantVerbs:  map[string][]string{"jobs": {"get", "create"}, "cronjobs": {"update"}},
			wantEvents: []string{normal + reasonMissingJob, normal + kit.ReasonSuccessfulCreate},
			wantActive: []string{scheduledName},
		},
		"the Job exists but the status write was lost: adopt it, no second Job": {
			cached:     []runtime.Object{newCronJob()},
			api:        []runtime.Object{newCronJob(), jobAt(topOfHour)},
			wantVerbs:  map[string][]string{"jobs": {"create", "get"}, "cronjobs": {"update"}},
			wantActive: []string{scheduledName},
			wantJobs:   1,
		},
		"Replace deletes through the API and creates": {
			cached:     []runtime.Object{newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(prev)), prev},
			api:        []runtime.Object{newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(prev)), prev},
			wantVerbs:  map[string][]string{"jobs": {"delete", "create"}, "cronjobs": {"update"}},
			wantEvents: []string{normal + kit.ReasonSuccessfulDelete, normal + kit.ReasonSuccessfulCreate},
			wantActive: []string{scheduledName},
			wantJobs:   1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, now, tc.api...)
			e.cache(t, tc.cached...)
			_, ctx := ktesting.NewTestContext(t)
			if tc.ownStatusUnseen {
				e.c.apply.writes = kit.NewOwnWrites(e.clock, map[string]kit.Store{"cronjobs": behindStore{}})
				written := newCronJob(lastScheduled(prevHour), listing(prev))
				written.ResourceVersion = "7"
				e.c.apply.writes.Wrote(written.UID, "cronjobs", written)
			}

			requeue, err := e.c.sync(ctx, "ops/backup")
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if e.c.queue.Len() > 0 {
				// The sync created the Job and queued the CronJob for the
				// status write; the next sync runs once the Job's event has
				// reached the cache.
				key, _ := e.c.queue.Get()
				e.c.queue.Done(key)
				if created, err := e.client.Tracker().Get(batchv1.SchemeGroupVersion.WithResource("jobs"), "ops", scheduledName); err == nil {
					e.cache(t, created)
				}
				if requeue, err = e.c.sync(ctx, key); err != nil {
					t.Fatalf("the sync after the create: %v", err)
				}
				if e.c.queue.Len() > 0 {
					t.Error("the sync after the create queued the CronJob again")
				}
			}
			if len(tc.cached) > 0 && !tc.ownStatusUnseen && requeue <= 0 {
				t.Errorf("requeue = %v, want the next scheduled time", requeue)
			}
			if diff := cmp.Diff(tc.wantEvents, drain(e.rec, false)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			gotVerbs := map[string][]string{}
			for _, r := range []string{"jobs", "cronjobs"} {
				if v := e.verbs(r); v != nil {
					gotVerbs[r] = v
				}
			}
			if diff := cmp.Diff(tc.wantVerbs, gotVerbs); diff != "" {
				t.Errorf("API calls (-want +got):\n%s", diff)
			}
			writes := e.statusWrites()
			if tc.wantActive == nil {
				if len(writes) != 0 {
					t.Errorf("status written: %+v", writes)
				}
			} else {
				if len(writes) != 1 {
					t.Fatalf("status written %d times, want once", len(writes))
				}
				var got []string
				for _, r := range writes[0].Active {
					got = append(got, r.Name)
				}
				if diff := cmp.Diff(tc.wantActive, got); diff != "" {
					t.Errorf("status.active (-want +got):\n%s", diff)
				}
			}
			if tc.wantJobs > 0 {
				jobs, err := e.client.BatchV1().Jobs("ops").List(ctx, metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(jobs.Items) != tc.wantJobs {
					t.Errorf("%d Jobs in the API, want %d", len(jobs.Items), tc.wantJobs)
				}
			}
		})
	}
}

// TestSyncSuspendedBeforeItsStatusWrite: a CronJob suspended between its
// Job's create and the status write its next sync owes it still lists the
// Job in status.active, as Kubernetes' single sync would, and no
// UnexpectedJob is reported.
func TestSyncSuspendedBeforeItsStatusWrite(t *testing.T) {
	cj := newCronJob()
	e := newTestEnv(t, utc("2026-05-19T10:00:00.2Z"), cj)
	e.cache(t, cj)
	_, ctx := ktesting.NewTestContext(t)
	if _, err := e.c.sync(ctx, "ops/backup"); err != nil {
		t.Fatal(err)
	}
	drain(e.rec, false)
	key, _ := e.c.queue.Get()
	e.c.queue.Done(key)

	suspended, err := e.client.BatchV1().CronJobs("ops").Get(ctx, "backup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	suspended.Spec.Suspend = ptr.To(true)
	if suspended, err = e.client.BatchV1().CronJobs("ops").Update(ctx, suspended, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := e.client.BatchV1().Jobs("ops").Get(ctx, minutes(topOfHour), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.cache(t, suspended, created)
	if _, err := e.c.sync(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := drain(e.rec, false); len(got) != 0 {
		t.Errorf("events of the sync after the suspend = %v, want none", got)
	}
	writes := e.statusWrites()
	if len(writes) != 1 || len(writes[0].Active) != 1 || writes[0].Active[0].Name != created.Name {
		t.Errorf("status writes %+v, want one listing %s", writes, created.Name)
	}
}

// TestSyncIgnoresJobsItDeleted covers the race after Replace: the CronJob's
// status already lacks the old Job while the Job cache still has it.
func TestSyncIgnoresJobsItDeleted(t *testing.T) {
	prev := jobAt(prevHour)
	cj := newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(prev))
	e := newTestEnv(t, utc("2026-05-19T10:00:00.2Z"), cj, prev)
	e.cache(t, cj, prev)
	_, ctx := ktesting.NewTestContext(t)
	if _, err := e.c.sync(ctx, "ops/backup"); err != nil {
		t.Fatal(err)
	}
	drain(e.rec, false)

	// The status write has reached the cache, the deletion has not.
	updated, err := e.client.BatchV1().CronJobs("ops").Get(ctx, "backup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.cache(t, updated)
	if _, err := e.c.sync(ctx, "ops/backup"); err != nil {
		t.Fatal(err)
	}
	if got := drain(e.rec, false); len(got) != 0 {
		t.Errorf("events after the replace = %v, want none", got)
	}

	// Once the cache drops the Job the memory is dropped.
	if err := e.factory.Batch().V1().Jobs().Informer().GetIndexer().Delete(prev); err != nil {
		t.Fatal(err)
	}
	if unseen := e.c.apply.writes.Unseen(updated.UID, "jobs"); len(unseen) != 0 {
		t.Errorf("deletion memory = %v after the cache dropped the Job", unseen)
	}
}

// recordingQueue tells the test about every AddAfter.
type recordingQueue struct {
	workqueue.TypedRateLimitingInterface[string]
	after chan time.Duration
}

func (q *recordingQueue) AddAfter(key string, d time.Duration) {
	q.TypedRateLimitingInterface.AddAfter(key, d)
	select {
	case q.after <- d:
	default:
	}
}

// TestRun runs the controller on a fake clientset and a fake clock through
// two scheduled times and a Job completion.
func TestRun(t *testing.T) {
	cj := newCronJob()
	e := newTestEnv(t, utc("2026-05-19T10:00:00.5Z"), cj)
	// Events go through the real broadcaster to the (fake) API here.
	e.record(e.events)
	q := e.recordQueue(100)
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); e.factory.Shutdown(); <-done })
	e.factory.Start(ctx.Done())
	go func() { defer close(done); e.c.Run(ctx, 2) }()

	first := minutes(topOfHour)
	waitFor(t, "the first Job and its status", func() bool {
		got, err := e.client.BatchV1().CronJobs("ops").Get(ctx, "backup", metav1.GetOptions{})
		return err == nil && len(got.Status.Active) == 1 && got.Status.Active[0].Name == first
	})
	job, err := e.client.BatchV1().Jobs("ops").Get(ctx, first, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-05-19T10:00:00Z" {
		t.Errorf("scheduled-timestamp annotation = %q", got)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != cj.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("controller reference = %+v", ref)
	}
	waitForRequeue(t, q, 59*time.Minute+59500*time.Millisecond+requeueDelay)

	// The Job finishes.
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	job.Status.CompletionTime = ptr.To(metav1.NewTime(utc("2026-05-19T10:00:00Z")))
	if _, err := e.client.BatchV1().Jobs("ops").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SawCompletedJob in status", func() bool {
		got, err := e.client.BatchV1().CronJobs("ops").Get(ctx, "backup", metav1.GetOptions{})
		return err == nil && len(got.Status.Active) == 0 && got.Status.LastSuccessfulTime != nil
	})

	// An hour later the queue wakes the controller for the next run.
	e.clock.Step(time.Hour)
	second := minutes(nextHour)
	waitFor(t, "the second Job", func() bool {
		_, err := e.client.BatchV1().Jobs("ops").Get(ctx, second, metav1.GetOptions{})
		return err == nil
	})
	waitFor(t, "events from cronjob-controller in the API", func() bool {
		events, err := e.client.CoreV1().Events("ops").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, ev := range events.Items {
			if ev.Source.Component == "cronjob-controller" && ev.InvolvedObject.Name == "backup" {
				seen[ev.Reason] = true
			}
		}
		return seen[kit.ReasonSuccessfulCreate] && seen[reasonSawCompletedJob]
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitForRequeue(t *testing.T, q *recordingQueue, want time.Duration) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case d := <-q.after:
			if d == want {
				return
			}
		case <-timeout:
			t.Fatalf("no AddAfter(%v)", want)
		}
	}
}

func TestUpdateCronJob(t *testing.T) {
	now := utc("2026-05-19T10:20:00Z")
	cases := map[string]struct {
		old, cur   *batchv1.CronJob
		wantAfter  time.Duration // -1: added now; 0: not queued
		wantEvents []string
	}{
		"other edits sync now": {
			old: newCronJob(), cur: newCronJob(suspended()), wantAfter: -1,
		},
		"a new schedule waits for its next time": {
			old: newCronJob(), cur: newCronJob(scheduled("30 * * * *")), wantAfter: 10*time.Minute + requeueDelay,
		},
		"a new time zone waits for its next time": {
			old: newCronJob(scheduled("45 19 * * *")), cur: newCronJob(scheduled("45 19 * * *"), inZone("Asia/Seoul")), wantAfter: 25*time.Minute + requeueDelay,
		},
		"an unparseable schedule is reported and not queued": {
			old: newCronJob(), cur: newCronJob(scheduled("every day")), wantEvents: []string{warning + reasonUnparseableOnUpdate},
		},
		"an unknown zone is left to the sync": {
			old: newCronJob(), cur: newCronJob(inZone("Nowhere/Special")), wantAfter: -1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, now)
			q := e.recordQueue(1)
			t.Cleanup(q.ShutDown)
			e.c.updateCronJob(tc.old, tc.cur)
			var after time.Duration
			select {
			case after = <-q.after:
			default:
				if q.Len() == 1 {
					after = -1
				}
			}
			if after != tc.wantAfter {
				t.Errorf("queued after %v, want %v", after, tc.wantAfter)
			}
			if diff := cmp.Diff(tc.wantEvents, drain(e.rec, false)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobEventsWakeTheirCronJob(t *testing.T) {
	cj := newCronJob()
	other := newCronJob()
	other.Name, other.UID = "other", "other-uid"
	job := jobAt(topOfHour)
	moved := job.DeepCopy()
	moved.ResourceVersion = "2"
	moved.OwnerReferences[0].Name, moved.OwnerReferences[0].UID = "other", "other-uid"
	stranger := job.DeepCopy()
	stranger.OwnerReferences[0].UID = "recreated-since"
	orphan := job.DeepCopy()
	orphan.OwnerReferences = nil

	cases := map[string]struct {
		event func(c *Controller)
		want  []string
	}{
		"add":                                 {event: func(c *Controller) { c.jobEvents.OnAdd(job, false) }, want: []string{"ops/backup"}},
		"add of a Job with a stale owner UID": {event: func(c *Controller) { c.jobEvents.OnAdd(stranger, false) }},
		"add of an orphan":                    {event: func(c *Controller) { c.jobEvents.OnAdd(orphan, false) }},
		"resync is not a change":              {event: func(c *Controller) { c.jobEvents.OnUpdate(job, job) }},
		"controller changed wakes both": {
			event: func(c *Controller) { c.jobEvents.OnUpdate(job, moved) }, want: []string{"ops/backup", "ops/other"},
		},
		"delete": {event: func(c *Controller) { c.jobEvents.OnDelete(job) }, want: []string{"ops/backup"}},
		"delete seen as tombstone": {
			event: func(c *Controller) {
				c.jobEvents.OnDelete(cache.DeletedFinalStateUnknown{Key: "ops/" + job.Name, Obj: job})
			},
			want: []string{"ops/backup"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, now())
			e.cache(t, cj, other)
			t.Cleanup(e.c.queue.ShutDown)
			tc.event(e.c)
			var got []string
			for e.c.queue.Len() > 0 {
				key, _ := e.c.queue.Get()
				got = append(got, key)
				e.c.queue.Done(key)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRequiresClientAndInformers(t *testing.T) {
	if _, err := New(kit.Config{}); err == nil {
		t.Error("New with an empty Config succeeded")
	}
}

func now() time.Time { return topOfHour }

// behindStore is an informer store that has applied resource version 1
// and holds nothing: every later write is unseen.
type behindStore struct{}

func (behindStore) LastStoreSyncResourceVersion() string { return "1" }
func (behindStore) GetByKey(string) (any, bool, error)   { return nil, false, nil }

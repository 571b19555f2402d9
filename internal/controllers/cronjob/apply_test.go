package cronjob

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

func TestApply(t *testing.T) {
	prev := jobAt(prevHour)
	prevRef := *jobRef(prev)
	newJob := func() *batchv1.Job { return jobFor(newCronJob(), topOfHour, time.UTC) }
	newName := minutes(topOfHour)
	terminatingNS := &apierrors.StatusError{ErrStatus: metav1.Status{
		Reason:  metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}},
	}}
	otherOwner := newJob()
	otherOwner.UID = "uid-other"
	otherOwner.OwnerReferences[0].UID = "someone-else"
	ours := newJob()
	ours.UID = types.UID("uid-" + newName)

	type want struct {
		calls      []string
		events     []string
		active     []string // status.active written, nil when no write
		lastSched  *time.Time
		noUpdate   bool
		err        bool
		remembered []types.UID
		owed       bool // the Job created, its status written by the next sync
	}
	// fail makes the fake apiserver refuse verb on resource (named objects
	// only, when names are given).
	type fail struct {
		verb, resource string
		err            error
		names          []string
	}
	cases := map[string]struct {
		cj       *batchv1.CronJob
		decision Decision
		// jobs are in the apiserver (and in the cache, with prev).
		jobs []*batchv1.Job
		fail []fail
		want want
	}{
		"create": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			want:     want{owed: true, calls: []string{"create " + newName}, events: []string{normal + kit.ReasonSuccessfulCreate}, active: []string{newName}, lastSched: &topOfHour},
		},
		"create fails": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			fail:     []fail{{"create", "jobs", apierrors.NewInternalError(errors.New("etcd is sad")), nil}},
			want:     want{calls: []string{"create " + newName}, events: []string{warning + kit.ReasonFailedCreate}, noUpdate: true, err: true},
		},
		"create fails but the observed status is still written": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			fail:     []fail{{"create", "jobs", apierrors.NewInternalError(errors.New("etcd is sad")), nil}},
			want:     want{calls: []string{"create " + newName}, events: []string{warning + kit.ReasonFailedCreate}, active: []string{}, err: true},
		},
		"create in a terminating namespace": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			fail:     []fail{{"create", "jobs", terminatingNS, nil}},
			want:     want{calls: []string{"create " + newName}, noUpdate: true, err: true},
		},
		"already exists, ours, status lost": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     []*batchv1.Job{ours},
			want:     want{owed: true, calls: []string{"create " + newName, "get " + newName}, active: []string{newName}, lastSched: &topOfHour},
		},
		"already exists, ours, already active": {
			cj:       newCronJob(listing(ours)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{*jobRef(ours)}}, Create: newJob(), ScheduledTime: topOfHour},
			jobs:     []*batchv1.Job{ours},
			want:     want{calls: []string{"create " + newName, "get " + newName}, noUpdate: true},
		},
		"already exists, someone else's": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     []*batchv1.Job{otherOwner},
			want:     want{calls: []string{"create " + newName, "get " + newName}, noUpdate: true},
		},
		"already exists, get fails": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     []*batchv1.Job{ours},
			fail:     []fail{{"get", "jobs", apierrors.NewTimeoutError("slow", 1), nil}},
			want:     want{calls: []string{"create " + newName, "get " + newName}, events: []string{warning + reasonFailedGet}, noUpdate: true, err: true},
		},
		"replace deletes, then creates": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}, Replace: []corev1.ObjectReference{prevRef}, Create: newJob(), ScheduledTime: topOfHour},
			jobs:     []*batchv1.Job{prev},
			want: want{owed: true,
				calls:      []string{"delete " + prev.Name, "create " + newName},
				events:     []string{normal + kit.ReasonSuccessfulDelete, normal + kit.ReasonSuccessfulCreate},
				active:     []string{newName},
				lastSched:  &topOfHour,
				remembered: []types.UID{prev.UID},
			},
		},
		"replace of a Job already gone still creates": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}, Replace: []corev1.ObjectReference{prevRef}, Create: newJob(), ScheduledTime: topOfHour},
			want: want{owed: true,
				calls:      []string{"delete " + prev.Name, "create " + newName},
				events:     []string{normal + kit.ReasonSuccessfulCreate},
				active:     []string{newName},
				lastSched:  &topOfHour,
				remembered: []types.UID{prev.UID},
			},
		},
		"replace that cannot delete does not create": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}, Replace: []corev1.ObjectReference{prevRef}, Create: newJob(), ScheduledTime: topOfHour},
			jobs:     []*batchv1.Job{prev},
			fail:     []fail{{"delete", "jobs", apierrors.NewForbidden(batchv1.Resource("jobs"), prev.Name, errors.New("no")), nil}},
			want:     want{calls: []string{"delete " + prev.Name}, events: []string{warning + kit.ReasonFailedDelete}, noUpdate: true, err: true},
		},
		"prune comes first and its failure does not fail the sync": {
			cj: newCronJob(),
			decision: Decision{
				Prune:  []*batchv1.Job{jobAt(at0700(), failed()), prev},
				Events: []kit.Event{{Type: corev1.EventTypeWarning, Reason: reasonUnexpectedJob, Message: "x"}},
			},
			jobs: []*batchv1.Job{prev, jobAt(at0700())},
			fail: []fail{{"delete", "jobs", apierrors.NewServiceUnavailable("busy"), []string{minutes(at0700())}}},
			want: want{
				calls:      []string{"delete " + minutes(at0700()), "delete " + prev.Name},
				events:     []string{warning + kit.ReasonFailedDelete, normal + kit.ReasonSuccessfulDelete, warning + reasonUnexpectedJob},
				noUpdate:   true,
				remembered: []types.UID{prev.UID},
			},
		},
		"no change, no write": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}},
			want:     want{noUpdate: true},
		},
		"status write fails": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			fail:     []fail{{"update", "cronjobs", apierrors.NewConflict(batchv1.Resource("cronjobs"), "backup", errors.New("stale")), nil}},
			want:     want{owed: true, calls: []string{"create " + newName}, events: []string{normal + kit.ReasonSuccessfulCreate}, active: []string{newName}, lastSched: &topOfHour, err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := []runtime.Object{tc.cj}
			// The cache still holds every Job the API server had, and prev.
			cached := &cachedJobs{jobs: map[string]*batchv1.Job{"ops/" + prev.Name: prev}}
			for _, j := range tc.jobs {
				objs = append(objs, j)
				cached.jobs[j.Namespace+"/"+j.Name] = j
			}
			client := kittest.NewAPI(objs...)
			for _, f := range tc.fail {
				kittest.Fail(client, f.verb, f.resource, f.err, f.names...)
			}
			rec := record.NewFakeRecorder(100)
			writes := kit.NewOwnWrites(clocktesting.NewFakeClock(topOfHour), map[string]kit.Store{"jobs": cached})
			a := applier{client: client, recorder: rec, writes: writes, owed: map[types.UID]owedStatus{}}
			before := tc.cj.DeepCopy()

			owed, err := a.apply(context.Background(), tc.cj, tc.decision)
			if owed != tc.want.owed {
				t.Errorf("apply owed a status write: %v, want %v", owed, tc.want.owed)
			}
			if owed {
				// The next sync decides from the status owed; with nothing
				// else changed, that status is its decision, and it writes it.
				next := a.takeOwed(tc.cj)
				if next == tc.cj {
					t.Fatal("the owed status is not remembered")
				}
				if a.takeOwed(tc.cj) != tc.cj {
					t.Error("the owed status is remembered after it was taken")
				}
				if owed, err = a.apply(context.Background(), tc.cj, Decision{Status: next.Status}); owed {
					t.Error("the next sync owes a status write too")
				}
			}

			if (err != nil) != tc.want.err {
				t.Errorf("apply error = %v, want error: %v", err, tc.want.err)
			}
			if diff := cmp.Diff(tc.want.calls, kittest.Calls(client, "jobs")); diff != "" {
				t.Errorf("job calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want.events, drain(rec, false)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			var remembered []types.UID
			for uid := range writes.Unseen(tc.cj.UID, "jobs") {
				remembered = append(remembered, uid)
			}
			if diff := cmp.Diff(tc.want.remembered, remembered); diff != "" {
				t.Errorf("remembered deletions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.cj); diff != "" {
				t.Errorf("apply modified the CronJob it was given:\n%s", diff)
			}
			updates := statusWrites(client)
			if tc.want.noUpdate {
				if len(updates) != 0 {
					t.Errorf("status written %d times, want none: %+v", len(updates), updates[0].Status)
				}
				return
			}
			if len(updates) != 1 {
				t.Fatalf("status written %d times, want once", len(updates))
			}
			status := updates[0].Status
			gotActive := []string{}
			for _, r := range status.Active {
				gotActive = append(gotActive, r.Name)
			}
			if diff := cmp.Diff(tc.want.active, gotActive); diff != "" {
				t.Errorf("status.active (-want +got):\n%s", diff)
			}
			var gotLast *time.Time
			if status.LastScheduleTime != nil {
				gotLast = ptr.To(status.LastScheduleTime.Time)
			}
			if diff := cmp.Diff(tc.want.lastSched, gotLast); diff != "" {
				t.Errorf("status.lastScheduleTime (-want +got):\n%s", diff)
			}
		})
	}
}

func at0700() time.Time { return utc("2026-05-19T07:00:00Z") }

// cachedJobs is a Job informer's store that never catches up.
type cachedJobs struct {
	jobs map[string]*batchv1.Job
}

func (c *cachedJobs) LastStoreSyncResourceVersion() string { return "1" }
func (c *cachedJobs) GetByKey(key string) (any, bool, error) {
	j, ok := c.jobs[key]
	return j, ok, nil
}

// statusWrites are the CronJob statuses written to the fake apiserver, or
// refused by it.
func statusWrites(client *fake.Clientset) []*batchv1.CronJob {
	var out []*batchv1.CronJob
	for _, a := range client.Actions() {
		if u, ok := a.(k8stesting.UpdateAction); ok && a.GetResource().Resource == "cronjobs" && a.GetSubresource() == "status" {
			out = append(out, u.GetObject().(*batchv1.CronJob))
		}
	}
	return out
}

// TestTakeOwed: a status owed is taken once, and only while the cache holds
// the CronJob it was computed from or one with the same status.
func TestTakeOwed(t *testing.T) {
	cj := newCronJob()
	cj.ResourceVersion = "5"
	owed := batchv1.CronJobStatus{Active: []corev1.ObjectReference{*jobRef(jobAt(topOfHour))}, LastScheduleTime: &metav1.Time{Time: topOfHour}}
	for name, tc := range map[string]struct {
		edit     func(*batchv1.CronJob) // from the CronJob the status was computed from to the cache's at the next sync
		wantOwed bool
	}{
		"the CronJob unchanged": {edit: func(*batchv1.CronJob) {}, wantOwed: true},
		"suspended since": {edit: func(c *batchv1.CronJob) {
			c.ResourceVersion, c.Spec.Suspend = "6", ptr.To(true)
		}, wantOwed: true},
		"its status written since": {edit: func(c *batchv1.CronJob) {
			c.ResourceVersion, c.Status.LastScheduleTime = "6", &metav1.Time{Time: prevHour}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			a := applier{owed: map[types.UID]owedStatus{cj.UID: {resourceVersion: cj.ResourceVersion, base: cj.Status, status: owed}}}
			cached := cj.DeepCopy()
			tc.edit(cached)
			got := a.takeOwed(cached)
			if tc.wantOwed != (got != cached) {
				t.Fatalf("took the owed status: %v, want %v", got != cached, tc.wantOwed)
			}
			if tc.wantOwed {
				if diff := cmp.Diff(owed, got.Status); diff != "" {
					t.Errorf("status (-want +got):\n%s", diff)
				}
				if cached.Status.Active != nil {
					t.Error("takeOwed modified the cached CronJob")
				}
			}
			if again := a.takeOwed(cached); again != cached {
				t.Error("the owed status is still remembered after it was taken")
			}
		})
	}
}

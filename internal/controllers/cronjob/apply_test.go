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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

func TestApply(t *testing.T) {
	prev := jobAt(prevHour)
	prevRef := jobRef(prev)
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
	}
	cases := map[string]struct {
		cj       *batchv1.CronJob
		decision Decision
		jobs     *recordingJobControl
		cronJobs *recordingCronJobControl
		want     want
	}{
		"create": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			want:     want{calls: []string{"create " + newName}, events: []string{normal + reasonSuccessfulCreate}, active: []string{newName}, lastSched: &topOfHour},
		},
		"create fails": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{createErr: apierrors.NewInternalError(errors.New("etcd is sad"))},
			want:     want{calls: []string{"create " + newName}, events: []string{warning + reasonFailedCreate}, noUpdate: true, err: true},
		},
		"create fails but the observed status is still written": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{createErr: apierrors.NewInternalError(errors.New("etcd is sad"))},
			want:     want{calls: []string{"create " + newName}, events: []string{warning + reasonFailedCreate}, active: []string{}, err: true},
		},
		"create in a terminating namespace": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{createErr: terminatingNS},
			want:     want{calls: []string{"create " + newName}, noUpdate: true, err: true},
		},
		"already exists, ours, status lost": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{existing: map[string]*batchv1.Job{newName: ours}},
			want:     want{calls: []string{"create " + newName, "get " + newName}, active: []string{newName}, lastSched: &topOfHour},
		},
		"already exists, ours, already active": {
			cj:       newCronJob(listing(ours)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{jobRef(ours)}}, Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{existing: map[string]*batchv1.Job{newName: ours}},
			want:     want{calls: []string{"create " + newName, "get " + newName}, noUpdate: true},
		},
		"already exists, someone else's": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{existing: map[string]*batchv1.Job{newName: otherOwner}},
			want:     want{calls: []string{"create " + newName, "get " + newName}, noUpdate: true},
		},
		"already exists, get fails": {
			cj:       newCronJob(),
			decision: Decision{Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{existing: map[string]*batchv1.Job{newName: ours}, getErr: apierrors.NewTimeoutError("slow", 1)},
			want:     want{calls: []string{"create " + newName, "get " + newName}, events: []string{warning + reasonFailedGet}, noUpdate: true, err: true},
		},
		"replace deletes, then creates": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}, Replace: []corev1.ObjectReference{prevRef}, Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{existing: map[string]*batchv1.Job{prev.Name: prev}},
			want: want{
				calls:      []string{"delete " + prev.Name, "create " + newName},
				events:     []string{normal + reasonSuccessfulDelete, normal + reasonSuccessfulCreate},
				active:     []string{newName},
				lastSched:  &topOfHour,
				remembered: []types.UID{prev.UID},
			},
		},
		"replace of a Job already gone still creates": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}, Replace: []corev1.ObjectReference{prevRef}, Create: newJob(), ScheduledTime: topOfHour},
			want: want{
				calls:      []string{"delete " + prev.Name, "create " + newName},
				events:     []string{normal + reasonSuccessfulCreate},
				active:     []string{newName},
				lastSched:  &topOfHour,
				remembered: []types.UID{prev.UID},
			},
		},
		"replace that cannot delete does not create": {
			cj:       newCronJob(listing(prev)),
			decision: Decision{Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{prevRef}}, Replace: []corev1.ObjectReference{prevRef}, Create: newJob(), ScheduledTime: topOfHour},
			jobs:     &recordingJobControl{existing: map[string]*batchv1.Job{prev.Name: prev}, deleteErr: map[string]error{prev.Name: apierrors.NewForbidden(jobsResource, prev.Name, errors.New("no"))}},
			want:     want{calls: []string{"delete " + prev.Name}, events: []string{warning + reasonFailedDelete}, noUpdate: true, err: true},
		},
		"prune comes first and its failure does not fail the sync": {
			cj: newCronJob(),
			decision: Decision{
				Prune:  []*batchv1.Job{jobAt(at0700(), failed()), prev},
				Events: []Event{{corev1.EventTypeWarning, reasonUnexpectedJob, "x"}},
			},
			jobs: &recordingJobControl{
				existing:  map[string]*batchv1.Job{prev.Name: prev, minutes(at0700()): jobAt(at0700())},
				deleteErr: map[string]error{minutes(at0700()): apierrors.NewServiceUnavailable("busy")},
			},
			want: want{
				calls:      []string{"delete " + minutes(at0700()), "delete " + prev.Name},
				events:     []string{warning + reasonFailedDelete, normal + reasonSuccessfulDelete, warning + reasonUnexpectedJob},
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
			cronJobs: &recordingCronJobControl{updateErr: apierrors.NewConflict(jobsResource, "backup", errors.New("stale"))},
			want:     want{calls: []string{"create " + newName}, events: []string{normal + reasonSuccessfulCreate}, active: []string{newName}, lastSched: &topOfHour, err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			jobs, cronJobs := tc.jobs, tc.cronJobs
			if jobs == nil {
				jobs = &recordingJobControl{}
			}
			if cronJobs == nil {
				cronJobs = &recordingCronJobControl{}
			}
			rec := record.NewFakeRecorder(100)
			// The cache still holds every Job the API server had, and prev.
			cached := &cachedJobs{jobs: map[string]*batchv1.Job{"ops/" + prev.Name: prev}}
			for _, j := range jobs.existing {
				cached.jobs[j.Namespace+"/"+j.Name] = j
			}
			writes := kit.NewOwnWrites(clocktesting.NewFakeClock(topOfHour), map[string]kit.Store{"jobs": cached})
			a := applier{jobs: jobs, cronJobs: cronJobs, recorder: rec, writes: writes}
			before := tc.cj.DeepCopy()

			err := a.apply(context.Background(), tc.cj, tc.decision)

			if (err != nil) != tc.want.err {
				t.Errorf("apply error = %v, want error: %v", err, tc.want.err)
			}
			if diff := cmp.Diff(tc.want.calls, jobs.calls); diff != "" {
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
			if tc.want.noUpdate {
				if len(cronJobs.updates) != 0 {
					t.Errorf("status written %d times, want none: %+v", len(cronJobs.updates), cronJobs.updates[0].Status)
				}
				return
			}
			if len(cronJobs.updates) != 1 {
				t.Fatalf("status written %d times, want once", len(cronJobs.updates))
			}
			status := cronJobs.updates[0].Status
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

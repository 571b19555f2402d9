package ttlafterfinished

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func finishedJob(ttl *int32, condition batch.JobConditionType, at time.Time) *batch.Job {
	job := &batch.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pi", UID: "uid-1"},
		Spec:       batch.JobSpec{TTLSecondsAfterFinished: ttl},
	}
	if condition != "" {
		job.Status.Conditions = []batch.JobCondition{
			{Type: batch.JobSuccessCriteriaMet, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(at.Add(-time.Hour))},
			{Type: condition, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)},
		}
	}
	return job
}

func TestDecide(t *testing.T) {
	cases := map[string]struct {
		job     *batch.Job
		want    decision
		wantErr bool
	}{
		"no TTL": {
			job:  finishedJob(nil, batch.JobComplete, testNow.Add(-time.Hour)),
			want: decision{},
		},
		"not finished": {
			job:  finishedJob(ptr.To[int32](0), "", time.Time{}),
			want: decision{},
		},
		"a False terminal condition is not finished": {
			job: func() *batch.Job {
				j := finishedJob(ptr.To[int32](0), batch.JobComplete, testNow)
				j.Status.Conditions[1].Status = v1.ConditionFalse
				return j
			}(),
			want: decision{},
		},
		"being deleted": {
			job: func() *batch.Job {
				j := finishedJob(ptr.To[int32](0), batch.JobComplete, testNow.Add(-time.Hour))
				j.DeletionTimestamp = ptr.To(metav1.NewTime(testNow))
				return j
			}(),
			want: decision{},
		},
		"complete, TTL ahead": {
			job:  finishedJob(ptr.To[int32](100), batch.JobComplete, testNow.Add(-30*time.Second)),
			want: decision{after: 70 * time.Second, finishedAt: testNow.Add(-30 * time.Second)},
		},
		"failed, TTL run out": {
			job:  finishedJob(ptr.To[int32](10), batch.JobFailed, testNow.Add(-10*time.Second)),
			want: decision{expire: true, finishedAt: testNow.Add(-10 * time.Second)},
		},
		"TTL zero": {
			job:  finishedJob(ptr.To[int32](0), batch.JobComplete, testNow),
			want: decision{expire: true, finishedAt: testNow},
		},
		"finished in the future (clock skew)": {
			job:  finishedJob(ptr.To[int32](5), batch.JobComplete, testNow.Add(time.Minute)),
			want: decision{after: 65 * time.Second, finishedAt: testNow.Add(time.Minute)},
		},
		"finished without a time": {
			job:     finishedJob(ptr.To[int32](5), batch.JobComplete, time.Time{}),
			want:    decision{},
			wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := decide(observed{job: tc.job, now: testNow})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(decision{})); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

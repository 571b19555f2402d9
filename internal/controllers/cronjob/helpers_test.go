package cronjob

import (
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// The tests' calendar: 2026-05-19 is a Tuesday; the test CronJob is created
// at 09:01 UTC and by default runs hourly on the hour.
var (
	created   = utc("2026-05-19T09:01:00Z")
	prevHour  = utc("2026-05-19T09:00:00Z")
	topOfHour = utc("2026-05-19T10:00:00Z")
	nextHour  = utc("2026-05-19T11:00:00Z")
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

type cjOption func(*batchv1.CronJob)

// newCronJob returns the test CronJob with the API server's defaults.
func newCronJob(opts ...cjOption) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "backup",
			Namespace:         "ops",
			UID:               "cj-uid",
			ResourceVersion:   "7",
			CreationTimestamp: metav1.NewTime(created),
		},
		Spec: batchv1.CronJobSpec{
			Schedule:                   "0 * * * *",
			ConcurrencyPolicy:          batchv1.AllowConcurrent,
			Suspend:                    ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{"app": "backup"},
					Annotations: map[string]string{"team": "storage"},
				},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](2),
					Template: corev1.PodTemplateSpec{
						Spec: corev1.PodSpec{
							RestartPolicy: corev1.RestartPolicyOnFailure,
							Containers:    []corev1.Container{{Name: "backup", Image: "backup:2.1.0"}},
						},
					},
				},
			},
		},
	}
	for _, o := range opts {
		o(cj)
	}
	return cj
}

func scheduled(spec string) cjOption { return func(cj *batchv1.CronJob) { cj.Spec.Schedule = spec } }
func policy(p batchv1.ConcurrencyPolicy) cjOption {
	return func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = p }
}
func deadline(seconds int64) cjOption {
	return func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To(seconds) }
}
func suspended() cjOption      { return func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) } }
func inZone(z string) cjOption { return func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To(z) } }
func createdAt(t time.Time) cjOption {
	return func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(t) }
}
func lastScheduled(t time.Time) cjOption {
	return func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = ptr.To(metav1.NewTime(t)) }
}
func lastSucceeded(t time.Time) cjOption {
	return func(cj *batchv1.CronJob) { cj.Status.LastSuccessfulTime = ptr.To(metav1.NewTime(t)) }
}
func history(succeeded, failed *int32) cjOption {
	return func(cj *batchv1.CronJob) {
		cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = succeeded, failed
	}
}
func beingDeleted() cjOption {
	return func(cj *batchv1.CronJob) { cj.DeletionTimestamp = ptr.To(metav1.NewTime(created)) }
}

// listing puts jobs in status.active.
func listing(jobs ...*batchv1.Job) cjOption {
	return func(cj *batchv1.CronJob) {
		for _, j := range jobs {
			cj.Status.Active = append(cj.Status.Active, *jobRef(j))
		}
	}
}

type jobOption func(*batchv1.Job)

// jobAt is a Job the test CronJob created for scheduledTime, started then.
func jobAt(scheduledTime time.Time, opts ...jobOption) *batchv1.Job {
	cj := newCronJob()
	j := jobFor(cj, scheduledTime, time.UTC)
	j.UID = types.UID(fmt.Sprintf("uid-%s", j.Name))
	j.ResourceVersion = "1"
	j.Status.StartTime = ptr.To(metav1.NewTime(scheduledTime))
	for _, o := range opts {
		o(j)
	}
	return j
}

// namedJob is a Job controlled by the test CronJob with any name.
func namedJob(name string, opts ...jobOption) *batchv1.Job {
	j := jobAt(prevHour, opts...)
	j.Name = name
	j.UID = types.UID("uid-" + name)
	return j
}

func condition(t batchv1.JobConditionType) jobOption {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue})
	}
}

// succeeded marks the Job Complete at completion.
func succeeded(completion time.Time) jobOption {
	return func(j *batchv1.Job) {
		condition(batchv1.JobComplete)(j)
		j.Status.CompletionTime = ptr.To(metav1.NewTime(completion))
	}
}

func failed() jobOption { return condition(batchv1.JobFailed) }

func startedAt(t *time.Time) jobOption {
	return func(j *batchv1.Job) {
		if t == nil {
			j.Status.StartTime = nil
			return
		}
		j.Status.StartTime = ptr.To(metav1.NewTime(*t))
	}
}

func terminating() jobOption {
	return func(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(created)) }
}

func minutes(t time.Time) string { return fmt.Sprintf("backup-%d", t.Unix()/60) }

package cronjob

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"quartet.dev/quartet/internal/controllers/kit"
)

// TestDecide checks the exported surface offline tools use (`quartet cron
// simulate`): Decide's fields and the exported reasons, on syncs that
// create, replace, prune and hold back. plan_test.go covers the decision
// itself case by case.
func TestDecide(t *testing.T) {
	prev := jobAt(prevHour)
	at := topOfHour.Add(time.Second)
	created := func(d Decision) bool {
		return d.Create != nil && d.Create.Name == minutes(topOfHour) && d.ScheduledTime.Equal(topOfHour)
	}
	cases := map[string]struct {
		o    Observed
		want func(Decision) bool
	}{
		"creates the due run": {
			o:    Observed{CronJob: newCronJob(), Now: at, Local: time.UTC},
			want: func(d Decision) bool { return created(d) && d.RequeueAfter > 0 },
		},
		"replaces the running Job": {
			o: Observed{CronJob: newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(prev)),
				Jobs: []*batchv1.Job{prev}, Now: at, Local: time.UTC},
			want: func(d Decision) bool { return created(d) && len(d.Replace) == 1 && d.Replace[0].UID == prev.UID },
		},
		"Forbid holds back": {
			o: Observed{CronJob: newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(prev)),
				Jobs: []*batchv1.Job{prev}, Now: at, Local: time.UTC},
			want: func(d Decision) bool {
				return d.Create == nil && len(d.Events) == 1 &&
					d.Events[0] == kit.Event{Type: corev1.EventTypeNormal, Reason: ReasonJobAlreadyActive, Message: "Not starting job because prior execution is running and concurrency policy is Forbid"}
			},
		},
		"prunes and forgets a gone Job": {
			o: Observed{CronJob: newCronJob(listing(prev), lastScheduled(prevHour)),
				Jobs: []*batchv1.Job{jobAt(prevHour.Add(-3*time.Hour), failed()), jobAt(prevHour.Add(-2*time.Hour), failed())},
				Gone: map[types.UID]bool{prev.UID: true}, Now: topOfHour.Add(-time.Minute), Local: time.UTC},
			want: func(d Decision) bool {
				return len(d.Prune) == 1 && d.Prune[0].Name == minutes(prevHour.Add(-3*time.Hour)) && len(d.Status.Active) == 0 && d.Create == nil
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if d := Decide(tc.o); !tc.want(d) {
				t.Errorf("Decide = %+v", d)
			}
		})
	}
}

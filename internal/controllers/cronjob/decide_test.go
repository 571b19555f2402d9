package cronjob

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestDecide checks that the exported Decide carries makePlan's decision
// field for field, on syncs that create, replace, prune and hold back.
func TestDecide(t *testing.T) {
	cases := map[string]Observed{
		"creates the due run": {CronJob: newCronJob(), Now: topOfHour.Add(time.Second), Local: time.UTC},
		"replaces the running Job": {
			CronJob: newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(jobAt(prevHour))),
			Jobs:    []*batchv1.Job{jobAt(prevHour)}, Now: topOfHour.Add(time.Second), Local: time.UTC,
		},
		"Forbid holds back": {
			CronJob: newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(jobAt(prevHour))),
			Jobs:    []*batchv1.Job{jobAt(prevHour)}, Now: topOfHour.Add(time.Second), Local: time.UTC,
		},
		"prunes and forgets a gone Job": {
			CronJob: newCronJob(listing(jobAt(prevHour)), lastScheduled(prevHour)),
			Jobs: []*batchv1.Job{
				jobAt(prevHour.Add(-3*time.Hour), failed()), jobAt(prevHour.Add(-2*time.Hour), failed()),
			},
			Gone: map[types.UID]bool{jobAt(prevHour).UID: true}, Now: topOfHour.Add(-time.Minute), Local: time.UTC,
		},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			p := makePlan(observed{cronJob: o.CronJob, jobs: o.Jobs, gone: o.Gone, now: o.Now, local: o.Local})
			d := Decide(o)
			var events []Event
			for _, e := range p.events {
				events = append(events, Event{e.eventType, e.reason, e.message})
			}
			want := Decision{Prune: p.prune, Events: events, Status: p.status, Replace: p.replace, Create: p.create,
				ScheduledTime: p.scheduledTime, RequeueAfter: p.requeueAfter}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("Decide differs from makePlan (-want +got):\n%s", diff)
			}
			if len(d.Events)+len(d.Prune)+len(d.Replace) == 0 && d.Create == nil {
				t.Errorf("the case decides nothing: %+v", d)
			}
		})
	}
	d := Decide(cases["Forbid holds back"])
	if len(d.Events) != 1 || d.Events[0].Reason != ReasonJobAlreadyActive || d.Events[0].Type != corev1.EventTypeNormal {
		t.Errorf("Forbid events = %+v", d.Events)
	}
}

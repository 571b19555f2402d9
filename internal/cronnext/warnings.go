package cronnext

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/explain"
)

// warnings are the errors and warnings `quartet explain` finds on the
// CronJob (its rule table is the one place the traps are written down),
// each with its fix and rule id, and two notes about the listed runs
// themselves. unanchored says an @every chain had to start at From because
// cj has no creation time or last run.
func warnings(cj *batchv1.CronJob, sched *schedule.Schedule, r Report, unanchored bool) []string {
	var w []string
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		w = append(w, "spec.suspend is true: none of these runs starts until it is set to false (and runs missed meanwhile "+
			"follow startingDeadlineSeconds when it is).")
	}
	for _, f := range explain.CronJobFindings(cj, explain.Options{Now: r.From, Local: r.Local}) {
		if f.Severity == explain.Note {
			continue
		}
		w = append(w, fmt.Sprintf("%s Fix: %s [%s]", f.Message, f.Fix, f.Rule))
	}
	if _, every := sched.Every(); every && unanchored {
		w = append(w, "@every runs are counted from the CronJob's creation and then from its last run; this "+
			"manifest has neither, so they are counted from the start time above.")
	}
	return w
}

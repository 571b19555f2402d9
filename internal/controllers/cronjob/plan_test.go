package cronjob

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// outcome is what a test reads off a plan.
type outcome struct {
	Events         []string // "Type Reason"
	Prune          []string
	Replace        []string
	Create         string
	Active         []string
	LastSuccessful string
	Requeue        time.Duration
}

func outcomeOf(p Decision) outcome {
	var o outcome
	for _, e := range p.Events {
		o.Events = append(o.Events, e.Type+" "+e.Reason)
	}
	for _, j := range p.Prune {
		o.Prune = append(o.Prune, j.Name)
	}
	for _, r := range p.Replace {
		o.Replace = append(o.Replace, r.Name)
	}
	if p.Create != nil {
		o.Create = p.Create.Name
	}
	for _, r := range p.Status.Active {
		o.Active = append(o.Active, r.Name)
	}
	if t := p.Status.LastSuccessfulTime; t != nil {
		o.LastSuccessful = t.UTC().Format(time.RFC3339)
	}
	o.Requeue = p.RequeueAfter
	return o
}

const (
	normal  = corev1.EventTypeNormal + " "
	warning = corev1.EventTypeWarning + " "
)

func TestMakePlan(t *testing.T) {
	d := requeueDelay
	at := func(s string) time.Time { return utc("2026-05-19T" + s + "Z") }
	running := func(t time.Time) *batchv1.Job { return jobAt(t) }
	done := func(t time.Time) *batchv1.Job { return jobAt(t, succeeded(t.Add(5*time.Minute))) }
	failedAt := func(t time.Time) *batchv1.Job { return jobAt(t, failed()) }
	weekLater := utc("2026-05-26T10:00:30Z")
	seoul, newYork := "Asia/Seoul", "America/New_York"

	cases := map[string]struct {
		cj          *batchv1.CronJob
		jobs        []*batchv1.Job
		gone        []*batchv1.Job
		now         time.Time
		local       *time.Location
		want        outcome
		wantMessage string // a substring of the first event's message
	}{
		// A schedule or zone that cannot run.
		"unparseable schedule": {
			cj: newCronJob(scheduled("obvious error schedule")), now: at("10:01:00"),
			want:        outcome{Events: []string{warning + reasonUnparseableSchedule}},
			wantMessage: `unparseable schedule: "obvious error schedule" : expected exactly 5 fields`,
		},
		"unparseable schedule keeps reconciling status": {
			cj:   newCronJob(scheduled("61 * * * *"), policy(batchv1.ForbidConcurrent), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{warning + reasonUnparseableSchedule}, Active: []string{minutes(prevHour)}},
		},
		"schedule with a TZ prefix missing its fields": {
			cj: newCronJob(scheduled("TZ=UTC")), now: at("10:01:00"),
			want: outcome{Events: []string{warning + reasonUnsupportedSchedule, warning + reasonUnparseableSchedule}},
		},
		"schedule naming no real date": {
			cj: newCronJob(scheduled("0 0 30 2 *")), now: at("10:01:00"),
			want:        outcome{Events: []string{warning + ReasonInvalidSchedule}},
			wantMessage: "invalid schedule: 0 0 30 2 * : ",
		},
		"unknown time zone": {
			cj: newCronJob(inZone("bad timezone")), now: at("10:01:00"),
			want:        outcome{Events: []string{warning + ReasonUnknownTimeZone}},
			wantMessage: `invalid timeZone: "bad timezone": `,
		},
		"unknown time zone is reported even when suspended": {
			cj: newCronJob(inZone("Mars/Olympus_Mons"), suspended()), now: at("10:01:00"),
			want: outcome{Events: []string{warning + ReasonUnknownTimeZone}},
		},

		// Never ran.
		"never ran, not time, Allow": {
			cj: newCronJob(), now: at("09:59:00"),
			want: outcome{Requeue: time.Minute + d},
		},
		"never ran, not time, Forbid": {
			cj: newCronJob(policy(batchv1.ForbidConcurrent)), now: at("09:59:00"),
			want: outcome{Requeue: time.Minute + d},
		},
		"never ran, not time, Replace": {
			cj: newCronJob(policy(batchv1.ReplaceConcurrent)), now: at("09:59:00"),
			want: outcome{Requeue: time.Minute + d},
		},
		"never ran, one nanosecond early": {
			cj: newCronJob(), now: topOfHour.Add(-time.Nanosecond),
			want: outcome{Requeue: time.Nanosecond + d},
		},
		"never ran, is time, Allow": {
			cj: newCronJob(), now: at("10:01:00"),
			want: outcome{Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"never ran, is time, Forbid": {
			cj: newCronJob(policy(batchv1.ForbidConcurrent)), now: at("10:01:00"),
			want: outcome{Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"never ran, is time, Replace": {
			cj: newCronJob(policy(batchv1.ReplaceConcurrent)), now: at("10:01:00"),
			want: outcome{Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"never ran, exactly at the scheduled time": {
			cj: newCronJob(), now: topOfHour,
			want: outcome{Create: minutes(topOfHour), Requeue: time.Hour + d},
		},
		"never ran, created after this hour's time": {
			cj: newCronJob(createdAt(at("10:00:30"))), now: at("10:01:00"),
			want: outcome{Requeue: 59*time.Minute + d},
		},
		"never ran, is time, suspended": {
			cj: newCronJob(suspended()), now: at("10:01:00"),
			want: outcome{},
		},
		"never ran, is time, within the deadline": {
			cj: newCronJob(deadline(300)), now: at("10:04:59"),
			want: outcome{Create: minutes(topOfHour), Requeue: 55*time.Minute + time.Second + d},
		},
		"never ran, past the deadline": {
			cj: newCronJob(deadline(300)), now: at("10:05:01"),
			want:        outcome{Events: []string{warning + ReasonMissSchedule}, Requeue: 54*time.Minute + 59*time.Second + d},
			wantMessage: "Missed scheduled time to start a job: Tue, 19 May 2026 10:00:00 +0000",
		},
		"never ran, exactly at the deadline": {
			cj: newCronJob(deadline(300)), now: at("10:05:00"),
			want: outcome{Events: []string{warning + ReasonMissSchedule}, Requeue: 55*time.Minute + d},
		},
		"a zero deadline never starts anything": {
			cj: newCronJob(deadline(0)), now: topOfHour.Add(d),
			want: outcome{Events: []string{warning + ReasonMissSchedule}, Requeue: time.Hour},
		},
		"never ran, in a zone, not time": {
			cj: newCronJob(scheduled("0 19 * * *"), inZone(seoul)), now: at("09:59:00"),
			want: outcome{Requeue: time.Minute + d},
		},
		"never ran, in a zone, is time": {
			cj: newCronJob(scheduled("0 19 * * *"), inZone(seoul)), now: at("10:01:00"),
			want: outcome{Create: minutes(topOfHour), Requeue: 23*time.Hour + 59*time.Minute + d},
		},
		"no time zone reads the schedule in the controller's zone": {
			cj: newCronJob(scheduled("0 19 * * *")), now: at("10:01:00"), local: zone(t, seoul),
			want: outcome{Create: minutes(topOfHour), Requeue: 23*time.Hour + 59*time.Minute + d},
		},
		"no time zone, controller in UTC": {
			cj: newCronJob(scheduled("0 19 * * *")), now: at("10:01:00"),
			want: outcome{Requeue: 8*time.Hour + 59*time.Minute + d},
		},
		"TZ prefix in the schedule wins over timeZone": {
			cj: newCronJob(scheduled("TZ=UTC 0 10 * * *"), inZone(seoul)), now: at("10:01:00"),
			want: outcome{Events: []string{warning + reasonUnsupportedSchedule}, Create: minutes(topOfHour), Requeue: 23*time.Hour + 59*time.Minute + d},
		},
		"CRON_TZ prefix in the schedule": {
			cj: newCronJob(scheduled("CRON_TZ=Asia/Seoul 0 19 * * *")), now: at("10:01:00"),
			want: outcome{Events: []string{warning + reasonUnsupportedSchedule}, Create: minutes(topOfHour), Requeue: 23*time.Hour + 59*time.Minute + d},
		},

		// Ran before and finished.
		"prev ran but done, not time, Allow": {
			cj:   newCronJob(lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("09:59:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z", Requeue: time.Minute + d},
		},
		"prev ran but done, not time, Forbid": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("09:59:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z", Requeue: time.Minute + d},
		},
		"prev ran but done, not time, Replace": {
			cj:   newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("09:59:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z", Requeue: time.Minute + d},
		},
		"prev ran but done, is time, Allow": {
			cj:   newCronJob(lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z", Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"prev ran but done, is time, Forbid": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z", Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"prev ran but done, is time, Replace": {
			cj:   newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z", Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"prev ran but done and already seen, is time": {
			cj:   newCronJob(lastScheduled(prevHour), lastSucceeded(at("09:05:00"))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:01:00"),
			want: outcome{LastSuccessful: "2026-05-19T09:05:00Z", Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"prev ran but failed, is time": {
			cj:   newCronJob(lastScheduled(prevHour), listing(failedAt(prevHour))),
			jobs: []*batchv1.Job{failedAt(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"prev ran but done, is time, suspended": {
			cj:   newCronJob(suspended(), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z"},
		},
		"prev ran but done, past the deadline": {
			cj:   newCronJob(deadline(10), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:00:11"),
			want: outcome{Events: []string{warning + ReasonMissSchedule}, LastSuccessful: "2026-05-19T09:05:00Z", Requeue: 59*time.Minute + 49*time.Second + d},
		},
		"prev ran but done, within the deadline": {
			cj:   newCronJob(deadline(10), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:00:09"),
			want: outcome{LastSuccessful: "2026-05-19T09:05:00Z", Create: minutes(topOfHour), Requeue: 59*time.Minute + 51*time.Second + d},
		},

		// A previous Job still runs.
		"still active, not time, Allow": {
			cj:   newCronJob(lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("09:59:00"),
			want: outcome{Active: []string{minutes(prevHour)}, Requeue: time.Minute + d},
		},
		"still active, not time, Forbid": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("09:59:00"),
			want: outcome{Active: []string{minutes(prevHour)}, Requeue: time.Minute + d},
		},
		"still active, not time, Replace": {
			cj:   newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("09:59:00"),
			want: outcome{Active: []string{minutes(prevHour)}, Requeue: time.Minute + d},
		},
		"still active, is time, Allow runs both": {
			cj:   newCronJob(lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want: outcome{Active: []string{minutes(prevHour)}, Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"still active, is time, Forbid skips": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want:        outcome{Events: []string{normal + ReasonJobAlreadyActive}, Active: []string{minutes(prevHour)}, Requeue: 59*time.Minute + d},
			wantMessage: "Not starting job because prior execution is running and concurrency policy is Forbid",
		},
		"still active, is time, Replace replaces": {
			cj:   newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want: outcome{Active: []string{minutes(prevHour)}, Replace: []string{minutes(prevHour)}, Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"two still active, is time, Replace replaces both": {
			cj:   newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(running(prevHour.Add(-time.Hour)), running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour.Add(-time.Hour)), running(prevHour)}, now: at("10:01:00"),
			want: outcome{
				Active:  []string{minutes(prevHour.Add(-time.Hour)), minutes(prevHour)},
				Replace: []string{minutes(prevHour.Add(-time.Hour)), minutes(prevHour)},
				Create:  minutes(topOfHour), Requeue: 59*time.Minute + d,
			},
		},
		"still active, is time, suspended": {
			cj:   newCronJob(suspended(), policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want: outcome{Active: []string{minutes(prevHour)}},
		},
		"still active, is time, past the deadline": {
			cj:   newCronJob(deadline(10), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:00:11"),
			want: outcome{Events: []string{warning + ReasonMissSchedule}, Active: []string{minutes(prevHour)}, Requeue: 59*time.Minute + 49*time.Second + d},
		},
		"still active, is time, within the deadline": {
			cj:   newCronJob(deadline(10), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:00:09"),
			want: outcome{Active: []string{minutes(prevHour)}, Create: minutes(topOfHour), Requeue: 59*time.Minute + 51*time.Second + d},
		},
		"Forbid starts the skipped run when the previous one finishes": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{jobAt(prevHour, succeeded(at("10:20:00")))}, now: at("10:20:01"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T10:20:00Z", Create: minutes(topOfHour), Requeue: 39*time.Minute + 59*time.Second + d},
		},
		"Forbid with a deadline drops the skipped run": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), deadline(300), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{jobAt(prevHour, succeeded(at("10:20:00")))}, now: at("10:20:01"),
			want: outcome{
				Events:         []string{normal + reasonSawCompletedJob, warning + ReasonMissSchedule},
				LastSuccessful: "2026-05-19T10:20:00Z", Requeue: 39*time.Minute + 59*time.Second + d,
			},
		},

		// Long overdue: the controller was away.
		"long overdue, no deadline, Allow": {
			cj:   newCronJob(lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: weekLater,
			want: outcome{Events: []string{warning + ReasonTooManyMissedTimes}, LastSuccessful: "2026-05-19T09:05:00Z", Create: "backup-29663160", Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"long overdue, no deadline, Replace": {
			cj:   newCronJob(policy(batchv1.ReplaceConcurrent), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: weekLater,
			want: outcome{Events: []string{warning + ReasonTooManyMissedTimes}, LastSuccessful: "2026-05-19T09:05:00Z", Create: "backup-29663160", Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"long overdue, no deadline, Forbid": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: weekLater,
			want: outcome{Events: []string{warning + ReasonTooManyMissedTimes}, LastSuccessful: "2026-05-19T09:05:00Z", Create: "backup-29663160", Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"long overdue, Forbid, still active": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: weekLater,
			want: outcome{Events: []string{warning + ReasonTooManyMissedTimes, normal + ReasonJobAlreadyActive}, Active: []string{minutes(prevHour)}, Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"long overdue, deadline of two hours": {
			cj:   newCronJob(deadline(2*60*60), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: weekLater,
			want: outcome{LastSuccessful: "2026-05-19T09:05:00Z", Create: "backup-29663160", Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"long overdue, short deadline already past": {
			cj:   newCronJob(deadline(10), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{done(prevHour)}, now: weekLater,
			want: outcome{Events: []string{warning + ReasonMissSchedule}, LastSuccessful: "2026-05-19T09:05:00Z", Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"ten minutes away, every minute, deadline 300 starts one Job": {
			cj:   newCronJob(scheduled("*/1 * * * *"), deadline(300), lastScheduled(at("09:50:00"))),
			now:  at("10:00:00.2"),
			want: outcome{Create: minutes(topOfHour), Requeue: 59*time.Second + 800*time.Millisecond + d},
		},
		"an hour away, every minute, no deadline starts one Job": {
			cj:   newCronJob(scheduled("*/1 * * * *"), lastScheduled(prevHour)),
			now:  at("10:00:30"),
			want: outcome{Create: minutes(topOfHour), Requeue: 30*time.Second + d},
		},
		"more than a hundred minutes away warns": {
			cj:   newCronJob(scheduled("*/1 * * * *"), lastScheduled(at("08:19:00"))),
			now:  at("10:00:30"),
			want: outcome{Events: []string{warning + ReasonTooManyMissedTimes}, Create: minutes(topOfHour), Requeue: 30*time.Second + d},
		},
		"exactly a hundred minutes away does not warn": {
			cj:   newCronJob(scheduled("*/1 * * * *"), lastScheduled(at("08:20:00"))),
			now:  at("10:00:30"),
			want: outcome{Create: minutes(topOfHour), Requeue: 30*time.Second + d},
		},

		// Clocks and names.
		"clock went back before the last scheduled time": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(topOfHour)),
			now:  at("09:59:00"),
			want: outcome{Requeue: time.Hour + time.Minute + d},
		},
		"scheduled time's Job already in status.active": {
			cj:   newCronJob(listing(running(topOfHour))),
			jobs: []*batchv1.Job{running(topOfHour)}, now: at("10:01:00"),
			want: outcome{Active: []string{minutes(topOfHour)}, Requeue: 59*time.Minute + d},
		},

		// Jobs that went missing, or that the controller did not create.
		"active Job went missing, is time": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			gone: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want:        outcome{Events: []string{normal + reasonMissingJob}, Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
			wantMessage: "Active job went missing: " + minutes(prevHour),
		},
		"active Job went missing, not time": {
			cj:   newCronJob(lastScheduled(prevHour), listing(running(prevHour))),
			gone: []*batchv1.Job{running(prevHour)}, now: at("09:30:00"),
			want: outcome{Events: []string{normal + reasonMissingJob}, Requeue: 30*time.Minute + d},
		},
		"active Job not in the cache but still there blocks Forbid": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour), listing(running(prevHour))),
			now:  at("10:01:00"),
			want: outcome{Events: []string{normal + ReasonJobAlreadyActive}, Active: []string{minutes(prevHour)}, Requeue: 59*time.Minute + d},
		},
		"unexpected running Job is reported, not adopted": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent)),
			jobs: []*batchv1.Job{namedJob("backup-manual-1")}, now: at("10:01:00"),
			want:        outcome{Events: []string{warning + reasonUnexpectedJob}, Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
			wantMessage: "Saw a job that the controller did not create or forgot: backup-manual-1",
		},
		"the scheduled time's Job exists but its status write was lost": {
			cj:   newCronJob(policy(batchv1.ForbidConcurrent), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{running(topOfHour)}, now: at("10:01:00"),
			// Not unexpected: the create finds it (AlreadyExists) and records it.
			want: outcome{Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"an older Job whose status write was lost is unexpected, as in Kubernetes": {
			cj:   newCronJob(lastScheduled(prevHour.Add(-time.Hour))),
			jobs: []*batchv1.Job{running(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{warning + reasonUnexpectedJob}, Create: minutes(topOfHour), Requeue: 59*time.Minute + d},
		},
		"unexpected finished Job counts for lastSuccessfulTime": {
			cj:   newCronJob(),
			jobs: []*batchv1.Job{namedJob("backup-manual-1", succeeded(at("09:30:00")))}, now: at("09:40:00"),
			want: outcome{LastSuccessful: "2026-05-19T09:30:00Z", Requeue: 20*time.Minute + d},
		},
		"lastSuccessfulTime is the latest completion": {
			cj: newCronJob(lastSucceeded(at("08:00:00")), history(nil, nil)),
			jobs: []*batchv1.Job{
				namedJob("a", succeeded(at("09:10:00"))), namedJob("b", succeeded(at("09:30:00"))), namedJob("c", succeeded(at("09:20:00"))),
			},
			now:  at("09:40:00"),
			want: outcome{LastSuccessful: "2026-05-19T09:30:00Z", Requeue: 20*time.Minute + d},
		},
		"lastSuccessfulTime never moves back": {
			cj:   newCronJob(lastSucceeded(at("09:35:00"))),
			jobs: []*batchv1.Job{namedJob("a", succeeded(at("09:30:00")))}, now: at("09:40:00"),
			want: outcome{LastSuccessful: "2026-05-19T09:35:00Z", Requeue: 20*time.Minute + d},
		},

		// @every schedules run on a chain from the creation or last run.
		"every, never ran, not time": {
			cj: newCronJob(scheduled("@every 1h")), now: at("10:00:30"),
			want: outcome{Requeue: 30*time.Second + d},
		},
		"every, never ran, is time": {
			cj: newCronJob(scheduled("@every 1h")), now: at("10:01:30"),
			want: outcome{Create: minutes(at("10:01:00")), Requeue: 59*time.Minute + 30*time.Second + d},
		},
		"every, prev ran, is time": {
			cj:   newCronJob(scheduled("@every 1h"), lastScheduled(at("10:01:00"))),
			now:  at("11:01:00"),
			want: outcome{Create: minutes(at("11:01:00")), Requeue: time.Hour + d},
		},
		"every, deadline shorter than the period still runs": {
			cj:   newCronJob(scheduled("@every 1h"), deadline(10), lastScheduled(at("10:01:00"))),
			now:  at("11:01:05"),
			want: outcome{Create: minutes(at("11:01:00")), Requeue: 59*time.Minute + 55*time.Second + d},
		},
		"every, past the deadline": {
			cj:   newCronJob(scheduled("@every 1h"), deadline(10), lastScheduled(at("10:01:00"))),
			now:  at("11:01:11"),
			want: outcome{Events: []string{warning + ReasonMissSchedule}, Requeue: 59*time.Minute + 49*time.Second + d},
		},
		"every, still active, Forbid": {
			cj:   newCronJob(scheduled("@every 1h"), policy(batchv1.ForbidConcurrent), lastScheduled(at("10:01:00")), listing(running(at("10:01:00")))),
			jobs: []*batchv1.Job{running(at("10:01:00"))}, now: at("11:01:00"),
			want: outcome{Events: []string{normal + ReasonJobAlreadyActive}, Active: []string{minutes(at("10:01:00"))}, Requeue: time.Hour + d},
		},
		"every, a week overdue": {
			cj:   newCronJob(scheduled("@every 1h"), lastScheduled(at("10:01:00"))),
			now:  utc("2026-05-26T10:30:00Z"),
			want: outcome{Events: []string{warning + ReasonTooManyMissedTimes}, Create: minutes(utc("2026-05-26T10:01:00Z")), Requeue: 31*time.Minute + d},
		},
		"every ten seconds runs once a minute: the name is taken": {
			cj:   newCronJob(scheduled("@every 10s"), lastScheduled(at("10:01:00")), listing(running(at("10:01:00")))),
			jobs: []*batchv1.Job{running(at("10:01:00"))}, now: at("10:01:20"),
			want: outcome{Active: []string{minutes(at("10:01:00"))}, Requeue: 10*time.Second + d},
		},

		// Daylight saving.
		"New York 02:30 on the spring-forward day waits a day": {
			cj:   newCronJob(scheduled("30 2 * * *"), inZone(newYork), createdAt(utc("2026-03-07T12:00:00Z")), lastScheduled(utc("2026-03-07T07:30:00Z"))),
			now:  utc("2026-03-08T07:30:00Z"), // 03:30 EDT
			want: outcome{Requeue: 23*time.Hour + d},
		},
		"New York 01:30 on the fall-back day runs twice": {
			cj:   newCronJob(scheduled("30 1 * * *"), inZone(newYork), createdAt(utc("2026-10-31T12:00:00Z")), lastScheduled(utc("2026-11-01T05:30:00Z"))),
			now:  utc("2026-11-01T06:30:01Z"), // 01:30:01 EST
			want: outcome{Create: minutes(utc("2026-11-01T06:30:00Z")), Requeue: 23*time.Hour + 59*time.Minute + 59*time.Second + d},
		},

		// History limits.
		"successful history beyond the limit is pruned oldest first": {
			cj: newCronJob(lastScheduled(prevHour)),
			jobs: []*batchv1.Job{
				done(at("05:00:00")), done(at("06:00:00")), done(at("07:00:00")), done(at("08:00:00")), done(prevHour),
			},
			now: at("09:30:00"),
			want: outcome{
				Prune:          []string{minutes(at("05:00:00")), minutes(at("06:00:00"))},
				LastSuccessful: "2026-05-19T09:05:00Z", Requeue: 30*time.Minute + d,
			},
		},
		"failed history beyond the limit is pruned": {
			cj:   newCronJob(lastScheduled(prevHour)),
			jobs: []*batchv1.Job{failedAt(at("07:00:00")), failedAt(at("08:00:00")), failedAt(prevHour), done(at("06:00:00"))},
			now:  at("09:30:00"),
			want: outcome{Prune: []string{minutes(at("07:00:00")), minutes(at("08:00:00"))}, LastSuccessful: "2026-05-19T06:05:00Z", Requeue: 30*time.Minute + d},
		},
		"a zero limit prunes the Job that just finished, without SawCompletedJob": {
			cj:   newCronJob(history(ptr.To[int32](0), ptr.To[int32](0)), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("09:30:00"),
			want: outcome{Prune: []string{minutes(prevHour)}, LastSuccessful: "2026-05-19T09:05:00Z", Requeue: 30*time.Minute + d},
		},
		"no limits keep everything": {
			cj:   newCronJob(history(nil, nil)),
			jobs: []*batchv1.Job{done(at("05:00:00")), done(at("06:00:00")), done(at("07:00:00")), done(at("08:00:00")), failedAt(at("04:00:00")), failedAt(at("03:00:00"))},
			now:  at("09:30:00"),
			want: outcome{LastSuccessful: "2026-05-19T08:05:00Z", Requeue: 30*time.Minute + d},
		},
		"Jobs that never started count as newest, names break ties": {
			cj: newCronJob(history(ptr.To[int32](1), nil), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{
				namedJob("z-never", succeeded(at("09:06:00")), startedAt(nil)),
				namedJob("b-same", succeeded(at("09:05:00"))),
				namedJob("a-same", succeeded(at("09:05:00"))),
			},
			now:  at("09:30:00"),
			want: outcome{Prune: []string{"a-same", "b-same"}, LastSuccessful: "2026-05-19T09:06:00Z", Requeue: 30*time.Minute + d},
		},
		"running and terminating Jobs are not pruned": {
			cj: newCronJob(history(ptr.To[int32](0), ptr.To[int32](0)), lastScheduled(prevHour), listing(running(prevHour))),
			jobs: []*batchv1.Job{
				running(prevHour), jobAt(at("08:00:00"), failed(), terminating()),
			},
			now:  at("09:30:00"),
			want: outcome{Active: []string{minutes(prevHour)}, Requeue: 30*time.Minute + d},
		},
		"history is pruned while suspended": {
			cj:   newCronJob(suspended(), history(ptr.To[int32](1), ptr.To[int32](1)), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{failedAt(at("07:00:00")), failedAt(at("08:00:00"))},
			now:  at("10:30:00"),
			want: outcome{Prune: []string{minutes(at("07:00:00"))}},
		},
		"history is pruned with an unparseable schedule": {
			cj:   newCronJob(scheduled("every day"), lastScheduled(prevHour)),
			jobs: []*batchv1.Job{failedAt(at("07:00:00")), failedAt(at("08:00:00"))},
			now:  at("10:30:00"),
			want: outcome{Prune: []string{minutes(at("07:00:00"))}, Events: []string{warning + reasonUnparseableSchedule}},
		},

		// Deletion.
		"a CronJob being deleted only reconciles status": {
			cj:   newCronJob(beingDeleted(), lastScheduled(prevHour), listing(done(prevHour))),
			jobs: []*batchv1.Job{done(prevHour)}, now: at("10:01:00"),
			want: outcome{Events: []string{normal + reasonSawCompletedJob}, LastSuccessful: "2026-05-19T09:05:00Z"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			local := tc.local
			if local == nil {
				local = time.UTC
			}
			gone := map[types.UID]bool{}
			for _, j := range tc.gone {
				gone[j.UID] = true
			}
			before := tc.cj.DeepCopy()
			p := Decide(Observed{CronJob: tc.cj, Jobs: tc.jobs, Gone: gone, Now: tc.now, Local: local})
			if diff := cmp.Diff(tc.want, outcomeOf(p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if tc.wantMessage != "" && (len(p.Events) == 0 || !strings.Contains(p.Events[0].Message, tc.wantMessage)) {
				t.Errorf("first event = %+v, want a message containing %q", p.Events, tc.wantMessage)
			}
			if diff := cmp.Diff(before, tc.cj); diff != "" {
				t.Errorf("Decide modified its CronJob (-before +after):\n%s", diff)
			}
		})
	}
}

// TestJobFor checks the Job a CronJob creates, field by field.
func TestJobFor(t *testing.T) {
	seoul := zone(t, "Asia/Seoul")
	cases := map[string]struct {
		cj            *batchv1.CronJob
		local         *time.Location
		wantTimestamp string
	}{
		"with a time zone, the annotation is in it": {
			cj: newCronJob(scheduled("0 19 * * *"), inZone("Asia/Seoul")), local: time.UTC, wantTimestamp: "2026-05-19T19:00:00+09:00",
		},
		"without one, the annotation is in UTC even if the controller is not": {
			cj: newCronJob(scheduled("0 19 * * *")), local: seoul, wantTimestamp: "2026-05-19T10:00:00Z",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := Decide(Observed{CronJob: tc.cj, Now: utc("2026-05-19T10:00:00Z"), Local: tc.local})
			if p.Create == nil {
				t.Fatal("no Job planned")
			}
			want := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{
					Name:      "backup-29653080",
					Namespace: "ops",
					Labels:    map[string]string{"app": "backup"},
					Annotations: map[string]string{
						"team": "storage",
						batchv1.CronJobScheduledTimestampAnnotation: tc.wantTimestamp,
					},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "batch/v1", Kind: "CronJob", Name: "backup", UID: "cj-uid",
						Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
					}},
				},
				Spec: tc.cj.Spec.JobTemplate.Spec,
			}
			if diff := cmp.Diff(want, p.Create); diff != "" {
				t.Errorf("job (-want +got):\n%s", diff)
			}
			if !p.ScheduledTime.Equal(topOfHour) {
				t.Errorf("scheduledTime = %v, want %v", p.ScheduledTime, topOfHour)
			}
			// The Job must not share maps with the CronJob's template.
			p.Create.Labels["x"] = "y"
			p.Create.Spec.Template.Spec.Containers[0].Image = "changed"
			if _, ok := tc.cj.Spec.JobTemplate.Labels["x"]; ok || tc.cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image == "changed" {
				t.Error("the planned Job aliases the CronJob's jobTemplate")
			}
		})
	}
}

func TestJobName(t *testing.T) {
	cj := newCronJob()
	cases := map[string]struct {
		at   time.Time
		want string
	}{
		"on the minute":         {at: topOfHour, want: "backup-29653080"},
		"seconds do not matter": {at: topOfHour.Add(59 * time.Second), want: "backup-29653080"},
		"next minute":           {at: topOfHour.Add(time.Minute), want: "backup-29653081"},
		"zone does not matter":  {at: topOfHour.In(zone(t, "Asia/Seoul")), want: "backup-29653080"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := jobName(cj, tc.at); got != tc.want {
				t.Errorf("jobName = %q, want %q", got, tc.want)
			}
		})
	}
}

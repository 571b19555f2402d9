package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/cronnext"
)

// CronJobsView lists the CronJobs and draws the selected one's timeline.
type CronJobsView struct {
	Items    []CronJobSummary `json:"items"`
	Selected *CronJobDetail   `json:"selected"`
}

// CronJobSummary is one line of the list.
type CronJobSummary struct {
	Ref       Ref        `json:"ref"`
	Schedule  string     `json:"schedule"`
	TimeZone  string     `json:"timeZone,omitempty"`
	Suspended bool       `json:"suspended"`
	Active    int        `json:"active"`
	Last      *time.Time `json:"lastSchedule,omitempty"`
}

// CronJobDetail is a CronJob's timeline: its past runs and what became of
// each, and its next runs, in its own time zone (Wall) and as instants the
// browser shows in the viewer's zone.
type CronJobDetail struct {
	Ref      Ref    `json:"ref"`
	Schedule string `json:"schedule"`
	// TimeZone is spec.timeZone; Zone the zone the schedule is read in
	// (IANA name when known) and ZoneSource where that comes from.
	TimeZone                string     `json:"timeZone,omitempty"`
	Zone                    string     `json:"zone"`
	ConcurrencyPolicy       string     `json:"concurrencyPolicy"`
	StartingDeadlineSeconds *int64     `json:"startingDeadlineSeconds,omitempty"`
	Suspended               bool       `json:"suspended"`
	SuccessfulHistory       int32      `json:"successfulJobsHistoryLimit"`
	FailedHistory           int32      `json:"failedJobsHistoryLimit"`
	LastScheduleTime        *time.Time `json:"lastScheduleTime,omitempty"`
	LastSuccessfulTime      *time.Time `json:"lastSuccessfulTime,omitempty"`
	// Error says why no timeline can be drawn (an unparseable schedule or
	// unknown zone), "" otherwise.
	Error    string    `json:"error,omitempty"`
	Now      time.Time `json:"now"`
	Runs     []CronRun `json:"runs"`
	Warnings []string  `json:"warnings"`
	Events   []Event   `json:"events"`
}

// Run states of the timeline.
const (
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunRunning   = "running"
	RunSkipped   = "skipped"  // concurrencyPolicy Forbid: the previous run was still active
	RunReplaced  = "replaced" // concurrencyPolicy Replace deleted it for the next run
	RunMissed    = "missed"   // not started within startingDeadlineSeconds
	RunDeleted   = "deleted"  // its Job is gone (history limit, or by hand)
	RunNoRecord  = "norecord" // a past time with no Job and no event left to tell
	RunNext      = "next"
	RunSuspended = "suspended" // a next time that will not run while suspended
)

// CronRun is one scheduled time on the timeline.
type CronRun struct {
	Time time.Time `json:"time"`
	// Wall is Time in the CronJob's zone, as the schedule reads it.
	Wall  string `json:"wall"`
	State string `json:"state"`
	// Job is the run's Job, when there is or was one.
	Job    string `json:"job,omitempty"`
	Manual bool   `json:"manual,omitempty"`
	// Why explains the state (an event's message, or the inference).
	Why string `json:"why,omitempty"`
}

const (
	pastRuns = 12
	nextRuns = 6
)

func cronJobsView(s *snapshot, namespace, name string, local *time.Location) CronJobsView {
	cjs := slices.Clone(s.CronJobs)
	byNamespaceName(cjs)
	v := CronJobsView{Items: []CronJobSummary{}}
	var selected *batchv1.CronJob
	for _, cj := range cjs {
		if cj.Namespace == namespace && cj.Name == name {
			selected = cj
		}
		if namespace != "" && cj.Namespace != namespace && name == "" {
			continue
		}
		v.Items = append(v.Items, CronJobSummary{
			Ref: Ref{Kind: "CronJob", Namespace: cj.Namespace, Name: cj.Name}, Schedule: cj.Spec.Schedule,
			TimeZone: ptrOr(cj.Spec.TimeZone, ""), Suspended: ptrOr(cj.Spec.Suspend, false),
			Active: len(cj.Status.Active), Last: timeOf(cj.Status.LastScheduleTime),
		})
		if selected == nil && name == "" {
			selected = cj
		}
	}
	if selected != nil {
		d := cronJobDetail(s, selected, local)
		v.Selected = &d
	}
	return v
}

// scheduledTimeOf is when a CronJob's Job was scheduled: its
// scheduled-timestamp annotation, else the minutes in its name.
func scheduledTimeOf(cronJob string, job *batchv1.Job) (time.Time, bool) {
	if v, ok := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; ok {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, true
		}
	}
	return scheduledTimeOfName(cronJob, job.Name)
}

func scheduledTimeOfName(cronJob, jobName string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(jobName, cronJob+"-")
	if !ok {
		return time.Time{}, false
	}
	m, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || m <= 0 {
		return time.Time{}, false
	}
	return time.Unix(m*60, 0).UTC(), true
}

func cronJobDetail(s *snapshot, cj *batchv1.CronJob, local *time.Location) CronJobDetail {
	now := s.Now
	d := CronJobDetail{
		Ref:                     Ref{Kind: "CronJob", Namespace: cj.Namespace, Name: cj.Name},
		Schedule:                cj.Spec.Schedule,
		TimeZone:                ptrOr(cj.Spec.TimeZone, ""),
		ConcurrencyPolicy:       string(cmp.Or(cj.Spec.ConcurrencyPolicy, batchv1.AllowConcurrent)),
		StartingDeadlineSeconds: cj.Spec.StartingDeadlineSeconds,
		Suspended:               ptrOr(cj.Spec.Suspend, false),
		SuccessfulHistory:       ptrOr(cj.Spec.SuccessfulJobsHistoryLimit, 3),
		FailedHistory:           ptrOr(cj.Spec.FailedJobsHistoryLimit, 1),
		LastScheduleTime:        timeOf(cj.Status.LastScheduleTime),
		LastSuccessfulTime:      timeOf(cj.Status.LastSuccessfulTime),
		Now:                     now,
		Runs:                    []CronRun{},
		Warnings:                []string{},
		Events:                  eventsAbout(s.Events, "CronJob", cj.Namespace, cj.Name, 50),
	}
	report, err := cronnext.Next(cj, now, nextRuns, local)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	d.Zone = report.Zone.String()
	d.Warnings = append(d.Warnings, report.Warnings...)
	sched, err := schedule.Parse(cj.Spec.Schedule, report.Zone)
	if err != nil { // cronnext.Next parsed it already
		d.Error = err.Error()
		return d
	}
	wall := func(t time.Time) string { return t.In(report.Zone).Format("Mon 2006-01-02 15:04 MST") }

	// The CronJob's Jobs by scheduled minute.
	type jobRun struct {
		job       *batchv1.Job
		scheduled time.Time
		manual    bool
	}
	var jobs []jobRun
	for _, j := range s.Jobs {
		if j.Namespace != cj.Namespace || !ownedBy(j, "CronJob", cj.Name) {
			continue
		}
		if t, ok := scheduledTimeOf(cj.Name, j); ok {
			jobs = append(jobs, jobRun{j, t, false})
		} else {
			jobs = append(jobs, jobRun{j, j.CreationTimestamp.Time, true})
		}
	}
	byMinute := map[int64]jobRun{}
	for _, r := range jobs {
		if !r.manual {
			byMinute[r.scheduled.Unix()/60] = r
		}
	}

	// Past scheduled times: the last pastRuns up to now, not before the
	// CronJob existed.
	created := cj.CreationTimestamp.Time
	period := max(report.Period, time.Minute)
	start := now.Add(-time.Duration(pastRuns+1) * period)
	if !created.IsZero() && created.After(start) {
		start = created
	}
	if every, ok := sched.Every(); ok && !created.IsZero() && start.After(created) {
		start = created.Add(start.Sub(created) / every * every)
	}
	var past []time.Time
	for t := sched.Next(start); !t.IsZero() && !t.After(now) && len(past) < 10000; t = sched.Next(t) {
		past = append(past, t)
	}
	if len(past) > pastRuns {
		past = past[len(past)-pastRuns:]
	}
	runs := map[int64]*CronRun{}
	add := func(t time.Time, state string) *CronRun {
		k := t.Unix() / 60
		if r := runs[k]; r != nil {
			return r
		}
		r := &CronRun{Time: t, Wall: wall(t), State: state}
		runs[k] = r
		return r
	}
	for _, t := range past {
		add(t, RunNoRecord)
	}
	var manual []CronRun
	for _, jr := range jobs {
		state := RunRunning
		if t, _, ok := jobOutcome(jr.job); ok {
			state = map[batchv1.JobConditionType]string{batchv1.JobComplete: RunSucceeded, batchv1.JobFailed: RunFailed}[t]
		}
		if jr.manual {
			manual = append(manual, CronRun{Time: jr.scheduled, Wall: wall(jr.scheduled), State: state, Job: jr.job.Name, Manual: true, Why: "created by hand"})
			continue
		}
		r := add(jr.scheduled, state)
		r.State, r.Job = state, jr.job.Name
	}

	// Events name what happened to times without a Job.
	gone := map[string]goneJob{}
	for _, g := range s.GoneJobs {
		if g.Namespace == cj.Namespace && g.Owner == cj.Name {
			gone[g.Name] = g
		}
	}
	for _, e := range s.Events {
		o := e.InvolvedObject
		if o.Kind != "CronJob" || o.Namespace != cj.Namespace || o.Name != cj.Name {
			continue
		}
		switch e.Reason {
		case "MissSchedule":
			_, text, ok := strings.Cut(e.Message, ": ")
			if !ok {
				continue
			}
			if t, err := time.Parse(time.RFC1123Z, strings.TrimSpace(text)); err == nil {
				r := add(t, RunMissed)
				if r.Job == "" {
					r.State, r.Why = RunMissed, e.Message
				}
			}
		case "SuccessfulDelete":
			jobName, ok := strings.CutPrefix(e.Message, "Deleted job ")
			if !ok {
				continue
			}
			t, ok := scheduledTimeOfName(cj.Name, jobName)
			if !ok {
				continue
			}
			r := add(t, RunDeleted)
			if _, exists := byMinute[t.Unix()/60]; exists {
				continue
			}
			r.Job = jobName
			r.State, r.Why = RunDeleted, "its Job was deleted (successful/failedJobsHistoryLimit, or by hand)"
			if g, ok := gone[jobName]; ok && g.Active {
				r.State, r.Why = RunReplaced, "deleted while it ran, for the next run (concurrencyPolicy Replace)"
			} else if !ok && d.ConcurrencyPolicy == string(batchv1.ReplaceConcurrent) && deletedAtASchedule(sched, t, eventTime(e)) {
				r.State, r.Why = RunReplaced, "deleted at the next scheduled time (concurrencyPolicy Replace)"
			}
		}
	}
	// Forbid: a time with no Job while an earlier run was active was
	// skipped. The JobAlreadyActive events say so; so does the overlap.
	if d.ConcurrencyPolicy == string(batchv1.ForbidConcurrent) {
		var skipEvents []*corev1.Event
		for _, e := range s.Events {
			o := e.InvolvedObject
			if o.Kind == "CronJob" && o.Namespace == cj.Namespace && o.Name == cj.Name && e.Reason == "JobAlreadyActive" {
				skipEvents = append(skipEvents, e)
			}
		}
		for _, r := range runs {
			if r.State != RunNoRecord {
				continue
			}
			for _, jr := range jobs {
				st := jr.job.Status.StartTime
				if jr.manual || st == nil || !st.Time.Before(r.Time) {
					continue
				}
				end := jr.job.Status.CompletionTime
				if _, c, ok := jobOutcome(jr.job); ok && end == nil {
					end = &c.LastTransitionTime
				}
				if end == nil || end.After(r.Time) {
					r.State, r.Why = RunSkipped, "skipped: "+jr.job.Name+" was still running (concurrencyPolicy Forbid)"
					break
				}
			}
			if r.State != RunNoRecord {
				continue
			}
			for _, e := range skipEvents {
				first := e.FirstTimestamp.Time
				if first.IsZero() {
					first = e.EventTime.Time
				}
				if !r.Time.After(eventTime(e)) && !r.Time.Before(first.Add(-period)) {
					r.State, r.Why = RunSkipped, e.Message
				}
			}
		}
	}

	for _, r := range report.Runs {
		state := RunNext
		if d.Suspended {
			state = RunSuspended
		}
		cr := add(r.Time, state)
		cr.Job = r.JobName
	}
	for _, r := range runs {
		if r.State == RunNoRecord {
			r.Why = "no Job and no event left: the Job may have been removed by the history limits, or the controller did not run then"
		}
		d.Runs = append(d.Runs, *r)
	}
	d.Runs = append(d.Runs, manual...)
	slices.SortFunc(d.Runs, func(a, b CronRun) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Job, b.Job)) })
	return d
}

// deletedAtASchedule tells a Job deleted within seconds of a later
// scheduled time (what Replace does) from one deleted in between.
func deletedAtASchedule(sched *schedule.Schedule, scheduled, deleted time.Time) bool {
	for t := sched.Next(scheduled); !t.IsZero() && !t.After(deleted); t = sched.Next(t) {
		if deleted.Sub(t) < 15*time.Second {
			return true
		}
	}
	return false
}

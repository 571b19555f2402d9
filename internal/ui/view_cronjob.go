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

// cronJobDetail is the selected CronJob: its past and next runs, each
// with what happened to it.
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
	tl := &cronTimeline{
		s: s, cj: cj, d: &d, sched: sched, zone: report.Zone,
		period: max(report.Period, time.Minute), runs: map[int64]*CronRun{},
	}
	tl.collectJobs()
	tl.addPast()
	manual := tl.addJobs()
	tl.addEvents()
	if d.ConcurrencyPolicy == string(batchv1.ForbidConcurrent) {
		tl.markForbidSkips()
	}
	for _, r := range report.Runs {
		state := RunNext
		if d.Suspended {
			state = RunSuspended
		}
		cr := tl.add(r.Time, state)
		cr.Job = r.JobName
	}
	for _, r := range tl.runs {
		if r.State == RunNoRecord {
			r.Why = "no Job and no event left: the Job may have been removed by the history limits, or the controller did not run then"
		}
		d.Runs = append(d.Runs, *r)
	}
	d.Runs = append(d.Runs, manual...)
	slices.SortFunc(d.Runs, func(a, b CronRun) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Job, b.Job)) })
	return d
}

// cronTimeline gathers a CronJob's runs by scheduled minute: past
// scheduled times, its Jobs, what its events say of times without one.
type cronTimeline struct {
	s        *snapshot
	cj       *batchv1.CronJob
	d        *CronJobDetail
	sched    *schedule.Schedule
	zone     *time.Location
	period   time.Duration
	jobs     []jobRun
	byMinute map[int64]jobRun
	runs     map[int64]*CronRun
}

// jobRun is one of the CronJob's Jobs and the time it was scheduled for
// (its creation time when it was made by hand).
type jobRun struct {
	job       *batchv1.Job
	scheduled time.Time
	manual    bool
}

func (tl *cronTimeline) wall(t time.Time) string {
	return t.In(tl.zone).Format("Mon 2006-01-02 15:04 MST")
}

// add returns the run at t's minute, adding it with state if there is none.
func (tl *cronTimeline) add(t time.Time, state string) *CronRun {
	k := t.Unix() / 60
	if r := tl.runs[k]; r != nil {
		return r
	}
	r := &CronRun{Time: t, Wall: tl.wall(t), State: state}
	tl.runs[k] = r
	return r
}

// collectJobs finds the CronJob's Jobs, by scheduled minute.
func (tl *cronTimeline) collectJobs() {
	cj := tl.cj
	for _, j := range tl.s.Jobs {
		if j.Namespace != cj.Namespace || !ownedBy(j, "CronJob", cj.Name) {
			continue
		}
		if t, ok := scheduledTimeOf(cj.Name, j); ok {
			tl.jobs = append(tl.jobs, jobRun{j, t, false})
		} else {
			tl.jobs = append(tl.jobs, jobRun{j, j.CreationTimestamp.Time, true})
		}
	}
	tl.byMinute = map[int64]jobRun{}
	for _, r := range tl.jobs {
		if !r.manual {
			tl.byMinute[r.scheduled.Unix()/60] = r
		}
	}
}

// addPast adds the past scheduled times: the last pastRuns up to now, not
// before the CronJob existed.
func (tl *cronTimeline) addPast() {
	now := tl.s.Now
	created := tl.cj.CreationTimestamp.Time
	start := now.Add(-time.Duration(pastRuns+1) * tl.period)
	if !created.IsZero() && created.After(start) {
		start = created
	}
	if every, ok := tl.sched.Every(); ok && !created.IsZero() && start.After(created) {
		start = created.Add(start.Sub(created) / every * every)
	}
	var past []time.Time
	for t := tl.sched.Next(start); !t.IsZero() && !t.After(now) && len(past) < 10000; t = tl.sched.Next(t) {
		past = append(past, t)
	}
	if len(past) > pastRuns {
		past = past[len(past)-pastRuns:]
	}
	for _, t := range past {
		tl.add(t, RunNoRecord)
	}
}

// addJobs gives each scheduled time with a Job that Job's state; it
// returns the Jobs made by hand, which have no scheduled time.
func (tl *cronTimeline) addJobs() []CronRun {
	var manual []CronRun
	for _, jr := range tl.jobs {
		state := RunRunning
		if t, _, ok := jobOutcome(jr.job); ok {
			state = map[batchv1.JobConditionType]string{batchv1.JobComplete: RunSucceeded, batchv1.JobFailed: RunFailed}[t]
		}
		if jr.manual {
			manual = append(manual, CronRun{Time: jr.scheduled, Wall: tl.wall(jr.scheduled), State: state, Job: jr.job.Name, Manual: true, Why: "created by hand"})
			continue
		}
		r := tl.add(jr.scheduled, state)
		r.State, r.Job = state, jr.job.Name
	}
	return manual
}

// addEvents marks what the CronJob's events say happened to times without
// a Job: missed (startingDeadlineSeconds), deleted, replaced.
func (tl *cronTimeline) addEvents() {
	cj := tl.cj
	gone := map[string]goneJob{}
	for _, g := range tl.s.GoneJobs {
		if g.Namespace == cj.Namespace && g.Owner == cj.Name {
			gone[g.Name] = g
		}
	}
	for _, e := range tl.s.Events {
		o := e.InvolvedObject
		if o.Kind != "CronJob" || o.Namespace != cj.Namespace || o.Name != cj.Name {
			continue
		}
		switch e.Reason {
		case "MissSchedule":
			tl.missed(e)
		case "SuccessfulDelete":
			tl.deleted(e, gone)
		}
	}
}

// missed marks the time a MissSchedule event names.
func (tl *cronTimeline) missed(e *corev1.Event) {
	_, text, ok := strings.Cut(e.Message, ": ")
	if !ok {
		return
	}
	if t, err := time.Parse(time.RFC1123Z, strings.TrimSpace(text)); err == nil {
		r := tl.add(t, RunMissed)
		if r.Job == "" {
			r.State, r.Why = RunMissed, e.Message
		}
	}
}

// deleted marks the time of the Job a SuccessfulDelete event names, when
// that Job is gone: deleted, or replaced (concurrencyPolicy Replace).
func (tl *cronTimeline) deleted(e *corev1.Event, gone map[string]goneJob) {
	jobName, ok := strings.CutPrefix(e.Message, "Deleted job ")
	if !ok {
		return
	}
	t, ok := scheduledTimeOfName(tl.cj.Name, jobName)
	if !ok {
		return
	}
	r := tl.add(t, RunDeleted)
	if _, exists := tl.byMinute[t.Unix()/60]; exists {
		return
	}
	r.Job = jobName
	r.State, r.Why = RunDeleted, "its Job was deleted (successful/failedJobsHistoryLimit, or by hand)"
	if g, ok := gone[jobName]; ok && g.Active {
		r.State, r.Why = RunReplaced, "deleted while it ran, for the next run (concurrencyPolicy Replace)"
	} else if !ok && tl.d.ConcurrencyPolicy == string(batchv1.ReplaceConcurrent) && deletedAtASchedule(tl.sched, t, eventTime(e)) {
		r.State, r.Why = RunReplaced, "deleted at the next scheduled time (concurrencyPolicy Replace)"
	}
}

// markForbidSkips is Forbid: a time with no Job while an earlier run was
// active was skipped. The JobAlreadyActive events say so; so does the
// overlap.
func (tl *cronTimeline) markForbidSkips() {
	cj := tl.cj
	var skipEvents []*corev1.Event
	for _, e := range tl.s.Events {
		o := e.InvolvedObject
		if o.Kind == "CronJob" && o.Namespace == cj.Namespace && o.Name == cj.Name && e.Reason == "JobAlreadyActive" {
			skipEvents = append(skipEvents, e)
		}
	}
	for _, r := range tl.runs {
		if r.State != RunNoRecord {
			continue
		}
		tl.skippedByOverlap(r)
		if r.State != RunNoRecord {
			continue
		}
		for _, e := range skipEvents {
			first := e.FirstTimestamp.Time
			if first.IsZero() {
				first = e.EventTime.Time
			}
			if !r.Time.After(eventTime(e)) && !r.Time.Before(first.Add(-tl.period)) {
				r.State, r.Why = RunSkipped, e.Message
			}
		}
	}
}

// skippedByOverlap marks r skipped when one of the Jobs ran over its time.
func (tl *cronTimeline) skippedByOverlap(r *CronRun) {
	for _, jr := range tl.jobs {
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
			return
		}
	}
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

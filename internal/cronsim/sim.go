// Package cronsim runs quartet's CronJob controller's planning code — the
// same cronjob.Decide the controller calls on every sync, not a copy — over
// a fake clock, with Jobs that run for a given time, so that "what happens
// with Allow, Forbid and Replace?" and "what happens after the control plane
// was down for an hour?" are answered in a second instead of in hours. It
// backs `quartet cron simulate`.
//
// The simulation stands in for everything around the CronJob controller: the
// API server (creates, deletes and status writes succeed at once), the Job
// controller (a Job runs from its creation for the given duration, or fails
// with DeadlineExceeded at activeDeadlineSeconds), the TTL-after-finished
// controller, and the informers and work queue (a sync at each requeue time
// the plan asks for, and one whenever a Job of the CronJob changes).
package cronsim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/cronjob"
	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
)

// MaxSyncs bounds one simulation: a schedule every minute for a week is
// about 20,000 syncs.
const MaxSyncs = 200000

// Config is one simulation.
type Config struct {
	// CronJob is simulated from its creation at From; its status is
	// ignored.
	CronJob *batchv1.CronJob
	From    time.Time
	For     time.Duration
	// JobDuration is how long each Job's work takes.
	JobDuration time.Duration
	// Outage, when set, is a time the control plane is down: no controller
	// runs, pods keep running.
	Outage *Window
	// Local is the controller's zone, for a CronJob without timeZone.
	Local *time.Location
}

// Window is an interval [Start, End).
type Window struct{ Start, End time.Time }

func (w *Window) contains(t time.Time) bool {
	return w != nil && !t.Before(w.Start) && t.Before(w.End)
}

// Kind classifies timeline entries.
type Kind string

const (
	Created   Kind = "created"
	Succeeded Kind = "succeeded"
	Failed    Kind = "failed"
	Replaced  Kind = "replaced"
	Pruned    Kind = "pruned"
	Expired   Kind = "expired" // deleted by ttlSecondsAfterFinished
	Held      Kind = "held"    // JobAlreadyActive
	Missed    Kind = "missed"  // MissSchedule
	TooMany   Kind = "too-many-missed"
	Down      Kind = "down"
	Up        Kind = "up"
	Problem   Kind = "problem" // a warning event that stops the CronJob
)

// Entry is one line of the timeline.
type Entry struct {
	At   time.Time
	Kind Kind
	Job  string
	// Scheduled is the Job's scheduled time (Created).
	Scheduled time.Time
	// Running is how many Jobs run after the entry.
	Running int
	Message string
}

// Late is a run that started after its scheduled time.
type Late struct{ Scheduled, Started time.Time }

// Result is what happened.
type Result struct {
	Config   Config
	Timeline []Entry
	// Scheduled are the schedule's times in the simulated window.
	Scheduled []time.Time
	// Started are the runs that got a Job: their scheduled time and when the
	// Job was created.
	Started []Late
	// Skipped are the scheduled times in the window that never got a Job.
	Skipped []time.Time
	// Late are the runs that started more than a second after their time.
	Late []Late
	// Peak is the most Jobs running at once, first reached at PeakAt.
	Peak   int
	PeakAt time.Time
	// Counts by kind of entry.
	Counts map[Kind]int
	// AfterOutage is what the first sync after the outage did.
	AfterOutage *OutageEffect
}

// OutageEffect describes the return of the control plane.
type OutageEffect struct {
	// Missed are the scheduled times during the outage.
	Missed []time.Time
	// Started are the Jobs the first sync after it created, with their
	// scheduled times.
	Started []Late
	// Warnings are the reasons of the warning events of that sync.
	Warnings []string
}

// simJob is a Job and what the simulation knows about its work.
type simJob struct {
	job       *batchv1.Job
	scheduled time.Time
	// workEnds is when its pod finishes on its own; deadline is when
	// activeDeadlineSeconds stops it (zero: none).
	workEnds, deadline time.Time
	finished, deleted  bool
	// expires is when the TTL controller deletes it (zero: never).
	expires time.Time
}

func (j *simJob) running() bool { return !j.finished && !j.deleted }

// sim is one run.
type sim struct {
	cfg     Config
	cj      *batchv1.CronJob
	jobs    []*simJob
	now     time.Time
	wake    time.Time // the next requeue; zero: none
	res     *Result
	uidSeq  int
	syncs   int
	changed bool // a Job changed: the informer enqueues the CronJob
}

// Simulate runs cfg.
func Simulate(cfg Config) (*Result, error) {
	if cfg.CronJob == nil {
		return nil, errors.New("no CronJob")
	}
	if cfg.For <= 0 {
		return nil, errors.New("the simulated time must be positive")
	}
	if cfg.JobDuration < 0 {
		return nil, errors.New("the Job duration must not be negative")
	}
	if cfg.Local == nil {
		cfg.Local = time.UTC
	}
	end := cfg.From.Add(cfg.For)
	if o := cfg.Outage; o != nil && (!o.End.After(o.Start) || o.Start.Before(cfg.From) || o.End.After(end)) {
		return nil, fmt.Errorf("the outage %s to %s is not inside the simulated time %s to %s", o.Start, o.End, cfg.From, end)
	}
	cj := cfg.CronJob.DeepCopy()
	defaults(cj)
	cj.CreationTimestamp = metav1.NewTime(cfg.From)
	cj.UID = "cronjob-uid"
	cj.Status = batchv1.CronJobStatus{}
	if cj.Namespace == "" {
		cj.Namespace = "default"
	}
	s := &sim{cfg: cfg, cj: cj, now: cfg.From, wake: cfg.From, res: &Result{
		Config: cfg, Counts: map[Kind]int{},
	}}
	if err := s.scheduledTimes(end); err != nil {
		return nil, err
	}
	for steps := 0; ; steps++ {
		t, ok := s.next(end)
		if !ok {
			break
		}
		s.now = t
		s.step()
		if s.syncs > MaxSyncs || steps > 4*MaxSyncs {
			return nil, fmt.Errorf("more than %d controller syncs: simulate a shorter time", MaxSyncs)
		}
	}
	s.summarize()
	return s.res, nil
}

func (s *sim) scheduledTimes(end time.Time) error {
	loc := s.cfg.Local
	if tz := s.cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			return fmt.Errorf("spec.timeZone %q: %v", *tz, err)
		}
		loc = l
	}
	sched, err := schedule.Parse(s.cj.Spec.Schedule, loc)
	if err != nil {
		return fmt.Errorf("spec.schedule %q: %v", s.cj.Spec.Schedule, err)
	}
	for t := sched.NextAfter(s.cfg.From, s.cfg.From); !t.IsZero() && t.Before(end); t = sched.Next(t) {
		s.res.Scheduled = append(s.res.Scheduled, t)
		if len(s.res.Scheduled) > MaxSyncs {
			return fmt.Errorf("more than %d scheduled runs: simulate a shorter time", MaxSyncs)
		}
	}
	return nil
}

// defaults sets what the API server defaults in a CronJob, as the
// controller would see it.
func defaults(cj *batchv1.CronJob) {
	spec := &cj.Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = ptr.To(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = ptr.To[int32](3)
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = ptr.To[int32](1)
	}
}

// next is the time of the next thing that happens before end.
func (s *sim) next(end time.Time) (time.Time, bool) {
	o := s.cfg.Outage
	var t time.Time
	consider := func(c time.Time) {
		// Nothing happens while the control plane is down: what falls in
		// the outage happens at its end.
		if o.contains(c) {
			c = o.End
		}
		if !c.IsZero() && c.Before(end) && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	consider(s.wake)
	for _, j := range s.jobs {
		if j.running() {
			consider(j.workEnds)
			consider(j.deadline)
		}
		if !j.deleted {
			consider(j.expires)
		}
	}
	if o != nil {
		if s.now.Before(o.Start) && o.Start.Before(end) && (t.IsZero() || o.Start.Before(t)) {
			t = o.Start
		}
		if s.now.Before(o.End) {
			consider(o.End)
		}
	}
	if !t.IsZero() && t.Before(s.now) {
		t = s.now
	}
	return t, !t.IsZero()
}

// step does what happens at s.now.
func (s *sim) step() {
	o := s.cfg.Outage
	if o != nil && s.now.Equal(o.Start) {
		s.log(Entry{Kind: Down, Message: "control plane down: no controller runs; pods keep running"})
	}
	down := o.contains(s.now)
	if o != nil && s.now.Equal(o.End) {
		s.log(Entry{Kind: Up, Message: "control plane back: every controller syncs"})
	}
	// The Job and TTL controllers; while the control plane is down a pod
	// that ends is noticed only when it is back.
	if !down {
		for _, j := range s.jobs {
			s.settle(j)
		}
	}
	if down {
		return
	}
	back := o != nil && s.now.Equal(o.End)
	if back || s.changed || (!s.wake.IsZero() && !s.now.Before(s.wake)) {
		s.sync(back)
	}
	// Deleted Jobs are gone from the API: forget them.
	s.jobs = slices.DeleteFunc(s.jobs, func(j *simJob) bool { return j.deleted })
}

// settle finishes or deletes a Job whose time has come.
func (s *sim) settle(j *simJob) {
	switch {
	case j.deleted:
		return
	case j.finished:
		if !j.expires.IsZero() && !s.now.Before(j.expires) {
			j.deleted = true
			s.changed = true
			s.log(Entry{Kind: Expired, Job: j.job.Name, Message: "deleted by ttlSecondsAfterFinished"})
		}
		return
	}
	// The earlier of the work's end and the deadline decides.
	switch {
	case !j.deadline.IsZero() && !s.now.Before(j.deadline) && j.deadline.Before(j.workEnds):
		s.finish(j, batchv1.JobFailed, "DeadlineExceeded")
	case !s.now.Before(j.workEnds):
		s.finish(j, batchv1.JobComplete, "")
	}
}

func (s *sim) finish(j *simJob, condition batchv1.JobConditionType, reason string) {
	j.finished = true
	s.changed = true
	c := batchv1.JobCondition{Type: condition, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: metav1.NewTime(s.now)}
	j.job.Status.Conditions = append(j.job.Status.Conditions, c)
	if condition == batchv1.JobComplete {
		j.job.Status.CompletionTime = &metav1.Time{Time: s.now}
		j.job.Status.Succeeded = 1
	}
	if ttl := j.job.Spec.TTLSecondsAfterFinished; ttl != nil {
		j.expires = s.now.Add(time.Duration(*ttl) * time.Second)
	}
	kind, msg := Succeeded, "succeeded"
	if condition == batchv1.JobFailed {
		kind, msg = Failed, "Failed: "+reason
	}
	s.log(Entry{Kind: kind, Job: j.job.Name, Message: msg})
}

// sync is one sync of the CronJob: the controller's own plan, then the
// writes as the API server would take them.
func (s *sim) sync(afterOutage bool) {
	s.syncs++
	s.changed = false
	var (
		jobs []*batchv1.Job
		gone map[types.UID]bool
	)
	for _, j := range s.jobs {
		if !j.deleted {
			jobs = append(jobs, j.job)
		}
	}
	for _, ref := range s.cj.Status.Active {
		if !slices.ContainsFunc(jobs, func(j *batchv1.Job) bool { return j.UID == ref.UID }) {
			if gone == nil {
				gone = map[types.UID]bool{}
			}
			gone[ref.UID] = true
		}
	}
	d := cronjob.Decide(cronjob.Observed{CronJob: s.cj, Jobs: jobs, Gone: gone, Now: s.now, Local: s.cfg.Local})

	var effect *OutageEffect
	if afterOutage {
		effect = &OutageEffect{}
		s.res.AfterOutage = effect
	}
	for _, p := range d.Prune {
		if j := s.byUID(p.UID); j != nil && !j.deleted {
			j.deleted = true
			s.log(Entry{Kind: Pruned, Job: j.job.Name, Message: "deleted: past the history limit"})
		}
	}
	for _, e := range d.Events {
		kind := Kind("")
		switch e.Reason {
		case cronjob.ReasonJobAlreadyActive:
			kind = Held
		case cronjob.ReasonMissSchedule:
			kind = Missed
		case cronjob.ReasonTooManyMissedTimes:
			kind = TooMany
		case cronjob.ReasonInvalidSchedule, cronjob.ReasonUnknownTimeZone:
			kind = Problem
		}
		if kind != "" {
			s.log(Entry{Kind: kind, Message: e.Reason + ": " + e.Message})
		}
		if effect != nil && e.Type == corev1.EventTypeWarning {
			effect.Warnings = append(effect.Warnings, e.Reason)
		}
	}
	status := d.Status
	for _, ref := range d.Replace {
		if j := s.byUID(ref.UID); j != nil && !j.deleted {
			j.deleted = true
			s.log(Entry{Kind: Replaced, Job: j.job.Name, Message: "deleted: Replace"})
		}
		status.Active = slices.DeleteFunc(status.Active, func(r corev1.ObjectReference) bool { return r.UID == ref.UID })
	}
	if d.Create != nil && !s.exists(d.Create.Name) {
		j := s.create(d.Create, d.ScheduledTime)
		status.Active = append(status.Active, corev1.ObjectReference{Kind: "Job", Namespace: j.job.Namespace, Name: j.job.Name, UID: j.job.UID})
		status.LastScheduleTime = &metav1.Time{Time: d.ScheduledTime}
		if effect != nil {
			effect.Started = append(effect.Started, Late{Scheduled: d.ScheduledTime, Started: s.now})
		}
	}
	s.cj.Status = status
	s.wake = time.Time{}
	if d.RequeueAfter > 0 {
		s.wake = s.now.Add(d.RequeueAfter)
	}
}

func (s *sim) create(job *batchv1.Job, scheduled time.Time) *simJob {
	s.uidSeq++
	job = job.DeepCopy()
	job.UID = types.UID(fmt.Sprintf("job-%d", s.uidSeq))
	job.CreationTimestamp = metav1.NewTime(s.now)
	job.Status.StartTime = &metav1.Time{Time: s.now}
	j := &simJob{job: job, scheduled: scheduled, workEnds: s.now.Add(s.cfg.JobDuration)}
	if d := job.Spec.ActiveDeadlineSeconds; d != nil {
		j.deadline = s.now.Add(time.Duration(*d) * time.Second)
	}
	s.jobs = append(s.jobs, j)
	s.res.Started = append(s.res.Started, Late{Scheduled: scheduled, Started: s.now})
	s.log(Entry{Kind: Created, Job: job.Name, Scheduled: scheduled, Message: "created"})
	return j
}

func (s *sim) exists(name string) bool {
	return slices.ContainsFunc(s.jobs, func(j *simJob) bool { return !j.deleted && j.job.Name == name })
}

func (s *sim) byUID(uid types.UID) *simJob {
	for _, j := range s.jobs {
		if j.job.UID == uid {
			return j
		}
	}
	return nil
}

func (s *sim) runningJobs() int {
	n := 0
	for _, j := range s.jobs {
		if j.running() {
			n++
		}
	}
	return n
}

func (s *sim) log(e Entry) {
	e.At = s.now
	e.Running = s.runningJobs()
	s.res.Timeline = append(s.res.Timeline, e)
	s.res.Counts[e.Kind]++
	if e.Running > s.res.Peak {
		s.res.Peak, s.res.PeakAt = e.Running, s.now
	}
}

func (s *sim) summarize() {
	r := s.res
	started := map[int64]time.Time{}
	for _, l := range r.Started {
		started[l.Scheduled.Unix()] = l.Started
	}
	for _, t := range r.Scheduled {
		started, ok := started[t.Unix()]
		if !ok {
			r.Skipped = append(r.Skipped, t)
			continue
		}
		if started.Sub(t) > time.Second {
			r.Late = append(r.Late, Late{Scheduled: t, Started: started})
		}
	}
	if o := s.cfg.Outage; o != nil && r.AfterOutage != nil {
		for _, t := range r.Scheduled {
			if o.contains(t) {
				r.AfterOutage.Missed = append(r.AfterOutage.Missed, t)
			}
		}
	}
}

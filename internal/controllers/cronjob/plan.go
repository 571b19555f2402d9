package cronjob

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/reference"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/controllers/kit"
)

// requeueDelay is added to every wake-up for a scheduled time. The delaying
// queue's timers run on the monotonic clock and never fire early, and a sync
// that still finds itself before the scheduled time (the wall clock was
// stepped back) simply sleeps again, so the margin only has to absorb timer
// granularity. Kubernetes pads by 100 ms; quartet's target is a Job within
// 100 ms of its scheduled time, so it pads by less.
const requeueDelay = 10 * time.Millisecond

// controllerKind is the kind in the controller reference of a CronJob's Jobs.
var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Observed is everything one sync of a CronJob knows when it decides.
type Observed struct {
	// CronJob is the CronJob as last read; Decide does not modify it.
	CronJob *batchv1.CronJob
	// Jobs are the Jobs whose controller reference is CronJob.
	Jobs []*batchv1.Job
	// Gone holds the UIDs of status.active entries that are not among Jobs
	// and are known to no longer exist (the apiserver said so).
	Gone map[types.UID]bool
	// Now is the time of the sync, read once.
	Now time.Time
	// Local is the zone a schedule without spec.timeZone is read in: the
	// controller's own, as in Kubernetes.
	Local *time.Location
}

// Decision is what one sync of a CronJob does, in order: delete Prune,
// record Events, delete Replace, create Create, write Status (with Create in
// status.active and ScheduledTime as lastScheduleTime once Create exists),
// and sync again after RequeueAfter.
type Decision struct {
	// Prune are finished Jobs past the history limits, oldest first.
	Prune  []*batchv1.Job
	Events []kit.Event
	// Status is the CronJob's status after what was observed, before the
	// effects of the writes below (applying them adds those).
	Status batchv1.CronJobStatus
	// Replace are the active Jobs deleted before Create (concurrencyPolicy
	// Replace). If one cannot be deleted, nothing is created.
	Replace []corev1.ObjectReference
	// Create is the Job for ScheduledTime, or nil.
	Create        *batchv1.Job
	ScheduledTime time.Time
	// RequeueAfter is when to sync again if nothing else happens: just after
	// the next scheduled time. Zero means only a change to the CronJob or its
	// Jobs should wake it (suspended, deleted, or a schedule that cannot run).
	RequeueAfter time.Duration
}

// Decide is the controller's decision for one sync of a CronJob, a pure
// function of o. Besides the controller, `quartet cron simulate` runs it
// over a fake clock.
func Decide(o Observed) Decision {
	cj := o.CronJob
	p := Decision{Status: *cj.Status.DeepCopy(), Prune: jobsToPrune(cj, o.Jobs)}

	// Reconcile status with the Jobs that exist.
	jobs := slices.SortedFunc(slices.Values(o.Jobs), func(a, b *batchv1.Job) int { return cmp.Compare(a.Name, b.Name) })
	for _, j := range jobs {
		condition := finishedCondition(j)
		active := hasUID(p.Status.Active, j.UID)
		switch {
		case condition == "" && !active:
			// Created by someone else with this CronJob as controller
			// (kubectl create job --from=cronjob/...), or by a controller
			// that crashed before recording it. Like Kubernetes, quartet
			// reports it and does not adopt it into status.active.
			p.warn(reasonUnexpectedJob, "%s", unexpectedJobMessage(j.Name))
		case condition != "" && active:
			p.Status.Active = withoutUID(p.Status.Active, j.UID)
			if !slices.Contains(p.Prune, j) {
				p.normal(reasonSawCompletedJob, "Saw completed job: %s, condition: %v", j.Name, condition)
			}
		}
		if condition == batchv1.JobComplete && j.Status.CompletionTime != nil {
			if last := p.Status.LastSuccessfulTime; last == nil || j.Status.CompletionTime.After(last.Time) {
				p.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
			}
		}
	}
	for _, ref := range cj.Status.Active {
		if o.Gone[ref.UID] && !slices.ContainsFunc(jobs, func(j *batchv1.Job) bool { return j.UID == ref.UID }) {
			p.normal(reasonMissingJob, "Active job went missing: %v", ref.Name)
			p.Status.Active = withoutUID(p.Status.Active, ref.UID)
		}
	}

	if sched := p.decideRun(o); sched != nil {
		anchor := scheduleAnchor(cj, p.Status)
		if p.Create != nil {
			anchor = p.ScheduledTime // the last scheduled time once Create exists
		}
		p.RequeueAfter = requeueAfter(sched, anchor, o.Now)
	}
	if p.Create != nil {
		// A running Job with the name of the one about to be created is this
		// controller's own, created by a sync whose status write was lost;
		// the create finds it and records it, so it is not unexpected.
		p.Events = slices.DeleteFunc(p.Events, func(e kit.Event) bool {
			return e.Reason == reasonUnexpectedJob && e.Message == unexpectedJobMessage(p.Create.Name)
		})
	}
	return p
}

func unexpectedJobMessage(name string) string {
	return "Saw a job that the controller did not create or forgot: " + name
}

// decideRun decides whether a Job starts in this sync, and which. It returns
// the parsed schedule when the CronJob should wake at its next scheduled
// time, and nil when only a change should wake it.
func (p *Decision) decideRun(o Observed) *schedule.Schedule {
	cj := o.CronJob
	if cj.DeletionTimestamp != nil {
		return nil
	}
	loc, err := schedule.Location(cj.Spec.TimeZone, o.Local)
	if err != nil {
		p.warn(ReasonUnknownTimeZone, "invalid timeZone: %q: %s", *cj.Spec.TimeZone, err)
		return nil
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return nil
	}
	if schedule.HasTZPrefix(cj.Spec.Schedule) {
		p.warn(reasonUnsupportedSchedule, "CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule)
	}
	sched, err := schedule.Parse(cj.Spec.Schedule, loc)
	if err != nil {
		p.warn(reasonUnparseableSchedule, "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return nil
	}

	anchor := scheduleAnchor(cj, p.Status)
	var cutoff time.Time
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		cutoff = o.Now.Add(-time.Duration(*d) * time.Second)
	}
	unmet, err := sched.Unmet(anchor, cutoff, o.Now)
	if err != nil {
		p.warn(ReasonInvalidSchedule, "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return nil
	}
	if unmet.MostRecent.IsZero() {
		if !cutoff.IsZero() {
			p.reportMissed(sched, cj, anchor, o)
		}
		return sched
	}
	scheduledTime := unmet.MostRecent
	if unmet.TooMany() {
		p.warn(ReasonTooManyMissedTimes, "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
	}
	name := jobName(cj, scheduledTime)
	if slices.ContainsFunc(p.Status.Active, func(r corev1.ObjectReference) bool { return r.Namespace == cj.Namespace && r.Name == name }) ||
		(p.Status.LastScheduleTime != nil && p.Status.LastScheduleTime.Time.Equal(scheduledTime)) {
		return sched // already started
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ForbidConcurrent && len(p.Status.Active) > 0 {
		// The time stays unmet: when the running Job finishes, it starts
		// then if startingDeadlineSeconds still allows it.
		p.normal(ReasonJobAlreadyActive, "Not starting job because prior execution is running and concurrency policy is Forbid")
		return sched
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ReplaceConcurrent {
		p.Replace = slices.Clone(p.Status.Active)
	}
	p.Create = jobFor(cj, scheduledTime, loc)
	p.ScheduledTime = scheduledTime
	return sched
}

// reportMissed records MissSchedule when the most recent scheduled time is
// older than startingDeadlineSeconds and so will never run. Kubernetes has
// the same event but, because it only searches within the deadline, never
// reaches it; quartet reports the skipped run so it is visible.
func (p *Decision) reportMissed(sched *schedule.Schedule, cj *batchv1.CronJob, anchor time.Time, o Observed) {
	all, err := sched.Unmet(anchor, time.Time{}, o.Now)
	if err != nil || all.MostRecent.IsZero() {
		return
	}
	name := jobName(cj, all.MostRecent)
	if slices.ContainsFunc(o.Jobs, func(j *batchv1.Job) bool { return j.Name == name }) {
		return // it ran after all; only its status was not recorded
	}
	p.warn(ReasonMissSchedule, "Missed scheduled time to start a job: %s", all.MostRecent.UTC().Format(time.RFC1123Z))
}

// scheduleAnchor is where the search for unmet scheduled times starts: the
// last scheduled time, or the CronJob's creation.
func scheduleAnchor(cj *batchv1.CronJob, status batchv1.CronJobStatus) time.Time {
	if status.LastScheduleTime != nil {
		return status.LastScheduleTime.Time
	}
	return cj.CreationTimestamp.Time
}

// requeueAfter is the wait from now until just after the next scheduled
// time counted from anchor (see Schedule.NextAfter), or 0 when the schedule
// never fires again.
func requeueAfter(sched *schedule.Schedule, anchor, now time.Time) time.Duration {
	next := sched.NextAfter(anchor, now)
	if next.IsZero() {
		return 0
	}
	return next.Sub(now) + requeueDelay
}

func (p *Decision) normal(reason, format string, args ...any) {
	p.Events = append(p.Events, kit.Event{Type: corev1.EventTypeNormal, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (p *Decision) warn(reason, format string, args ...any) {
	p.Events = append(p.Events, kit.Event{Type: corev1.EventTypeWarning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// jobName is the name of the Job for scheduledTime: the CronJob's name and
// the minutes since the epoch. Two syncs that decide on the same scheduled
// time produce the same name, so the API server refuses the second Job; the
// name is the lock against double runs.
func jobName(cj *batchv1.CronJob, scheduledTime time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduledTime.Unix()/60)
}

// jobFor builds the Job a CronJob whose schedule is read in loc runs at
// scheduledTime from its jobTemplate. The scheduled-timestamp annotation is
// in spec.timeZone, or UTC when it is unset (as in Kubernetes, which does not
// use the controller's zone here).
func jobFor(cj *batchv1.CronJob, scheduledTime time.Time, loc *time.Location) *batchv1.Job {
	annotations := maps.Clone(cj.Spec.JobTemplate.Annotations)
	if annotations == nil {
		annotations = make(map[string]string, 1)
	}
	if cj.Spec.TimeZone == nil {
		loc = time.UTC
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduledTime.In(loc).Format(time.RFC3339)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobName(cj, scheduledTime),
			Namespace:       cj.Namespace,
			Labels:          maps.Clone(cj.Spec.JobTemplate.Labels),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
	}
	cj.Spec.JobTemplate.Spec.DeepCopyInto(&job.Spec)
	return job
}

// jobRef is how status.active refers to a Job.
func jobRef(j *batchv1.Job) *corev1.ObjectReference {
	ref, _ := reference.GetReference(scheme.Scheme, j) // fails only for a kind the scheme lacks
	return ref
}

// finishedCondition returns how j has finished, JobComplete or JobFailed, or
// "" while it runs.
func finishedCondition(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// jobsToPrune returns the finished Jobs beyond successfulJobsHistoryLimit and
// failedJobsHistoryLimit, oldest first by start time (Jobs that never
// started count as newest; names break ties). A nil limit keeps everything.
// Jobs already being deleted neither count nor are deleted again.
func jobsToPrune(cj *batchv1.CronJob, jobs []*batchv1.Job) []*batchv1.Job {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue
		}
		switch finishedCondition(j) {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	return append(oldestBeyond(succeeded, cj.Spec.SuccessfulJobsHistoryLimit),
		oldestBeyond(failed, cj.Spec.FailedJobsHistoryLimit)...)
}

func oldestBeyond(jobs []*batchv1.Job, limit *int32) []*batchv1.Job {
	if limit == nil || len(jobs) <= int(*limit) {
		return nil
	}
	slices.SortFunc(jobs, func(a, b *batchv1.Job) int {
		sa, sb := a.Status.StartTime, b.Status.StartTime
		switch {
		case sa == nil && sb != nil:
			return 1
		case sa != nil && sb == nil:
			return -1
		case sa != nil && !sa.Equal(sb):
			return sa.Compare(sb.Time)
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return jobs[:len(jobs)-max(int(*limit), 0)]
}

func hasUID(refs []corev1.ObjectReference, uid types.UID) bool {
	return slices.ContainsFunc(refs, func(r corev1.ObjectReference) bool { return r.UID == uid })
}

func withoutUID(refs []corev1.ObjectReference, uid types.UID) []corev1.ObjectReference {
	return slices.DeleteFunc(slices.Clone(refs), func(r corev1.ObjectReference) bool { return r.UID == uid })
}

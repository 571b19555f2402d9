package cronjob

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Observed is what one sync of a CronJob sees, for Decide.
type Observed struct {
	// CronJob is the CronJob as last read; Decide does not modify it.
	CronJob *batchv1.CronJob
	// Jobs are the Jobs whose controller reference is CronJob.
	Jobs []*batchv1.Job
	// Gone holds the UIDs of status.active entries that are not among Jobs
	// and are known to no longer exist.
	Gone map[types.UID]bool
	// Now is the time of the sync.
	Now time.Time
	// Local is the zone a schedule without spec.timeZone is read in (the
	// controller's own).
	Local *time.Location
}

// Decision is what one sync does, in order: delete Prune, record Events,
// delete Replace, create Create, write Status (plus Create in status.active
// and ScheduledTime as lastScheduleTime once it is created), and sync again
// after RequeueAfter (zero: only when the CronJob or one of its Jobs changes).
type Decision struct {
	Prune         []*batchv1.Job
	Events        []Event
	Status        batchv1.CronJobStatus
	Replace       []corev1.ObjectReference
	Create        *batchv1.Job
	ScheduledTime time.Time
	RequeueAfter  time.Duration
}

// Event is an event a sync records on the CronJob.
type Event struct {
	Type, Reason, Message string
}

// Decide is the controller's decision for one sync: the same pure function
// the controller runs (makePlan), exported so that offline tools such as
// `quartet cron simulate` drive the real planning code over a fake clock
// instead of a copy of it.
func Decide(o Observed) Decision {
	p := makePlan(observed{cronJob: o.CronJob, jobs: o.Jobs, gone: o.Gone, now: o.Now, local: o.Local})
	d := Decision{
		Prune:         p.prune,
		Status:        p.status,
		Replace:       p.replace,
		Create:        p.create,
		ScheduledTime: p.scheduledTime,
		RequeueAfter:  p.requeueAfter,
	}
	for _, e := range p.events {
		d.Events = append(d.Events, Event{Type: e.eventType, Reason: e.reason, Message: e.message})
	}
	return d
}

// Event reasons a Decision can carry, for callers of Decide.
const (
	ReasonJobAlreadyActive   = reasonJobAlreadyActive
	ReasonMissSchedule       = reasonMissSchedule
	ReasonTooManyMissedTimes = reasonTooManyMissedTimes
	ReasonSawCompletedJob    = reasonSawCompletedJob
	ReasonInvalidSchedule    = reasonInvalidSchedule
	ReasonUnknownTimeZone    = reasonUnknownTimeZone
)

package ttlafterfinished

import (
	"fmt"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
)

// action is what to do about one Job.
type action int

const (
	// actIgnore: the Job is not finished, has no TTL or is already being
	// deleted.
	actIgnore action = iota
	// actWait: the TTL runs out later.
	actWait
	// actExpire: the TTL has run out; delete the Job.
	actExpire
)

// observed is what the plan looks at: one Job (from the cache, or read past
// it just before a delete) and the time of the sync.
type observed struct {
	job *batch.Job
	now time.Time
}

// decision is what to do about one Job at one moment.
type decision struct {
	action action
	// after is how long until the TTL runs out, for actWait.
	after time.Duration
	// finishedAt is when the Job finished, for actWait and actExpire.
	finishedAt time.Time
}

// finishedAt is the time of the Job's Complete or Failed condition; a
// finished Job without one cannot be timed.
func finishedAt(job *batch.Job) (time.Time, bool, error) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batch.JobComplete || c.Type == batch.JobFailed) && c.Status == v1.ConditionTrue {
			if c.LastTransitionTime.IsZero() {
				return time.Time{}, true, fmt.Errorf("job %s/%s has a %s condition without a transition time", job.Namespace, job.Name, c.Type)
			}
			return c.LastTransitionTime.Time, true, nil
		}
	}
	return time.Time{}, false, nil
}

// decide is the controller's plan, a pure function of the Job and now.
func decide(in observed) (decision, error) {
	job := in.job
	if job.DeletionTimestamp != nil || job.Spec.TTLSecondsAfterFinished == nil {
		return decision{action: actIgnore}, nil
	}
	finished, ok, err := finishedAt(job)
	if err != nil || !ok {
		return decision{action: actIgnore}, err
	}
	ttl := time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second
	left := finished.Add(ttl).Sub(in.now)
	if left <= 0 {
		return decision{action: actExpire, finishedAt: finished}, nil
	}
	return decision{action: actWait, after: left, finishedAt: finished}, nil
}

// needsCleanup is a Job this controller must look at: finished, with a TTL.
func needsCleanup(job *batch.Job) bool {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return false
	}
	_, finished, _ := finishedAt(job)
	return finished
}

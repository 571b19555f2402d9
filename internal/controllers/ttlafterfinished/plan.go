package ttlafterfinished

import (
	"fmt"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
)

// observed is what the plan looks at: one Job (from the cache, or read past
// it just before a delete) and the time of the sync.
type observed struct {
	job *batch.Job
	now time.Time
}

// decision is what to do about one Job at one moment. The zero decision
// ignores the Job: it is not finished, has no TTL or is already being deleted.
type decision struct {
	// expire: the TTL has run out; delete the Job.
	expire bool
	// after is how long until the TTL runs out, when it has not yet.
	after time.Duration
	// finishedAt is when the Job finished, when it is not ignored.
	finishedAt time.Time
}

// finishedAt is the time of the Job's Complete or Failed condition, zero
// while it has none; a finished Job without a time cannot be timed.
func finishedAt(job *batch.Job) (time.Time, error) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batch.JobComplete || c.Type == batch.JobFailed) && c.Status == v1.ConditionTrue {
			if c.LastTransitionTime.IsZero() {
				return time.Time{}, fmt.Errorf("job %s/%s has a %s condition without a transition time", job.Namespace, job.Name, c.Type)
			}
			return c.LastTransitionTime.Time, nil
		}
	}
	return time.Time{}, nil
}

// decide is the controller's plan, a pure function of the Job and now.
func decide(in observed) (decision, error) {
	job := in.job
	if job.DeletionTimestamp != nil || job.Spec.TTLSecondsAfterFinished == nil {
		return decision{}, nil
	}
	finished, err := finishedAt(job)
	if err != nil || finished.IsZero() {
		return decision{}, err
	}
	ttl := time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second
	left := finished.Add(ttl).Sub(in.now)
	return decision{expire: left <= 0, after: max(left, 0), finishedAt: finished}, nil
}

// needsCleanup is a Job this controller must look at: one decide does not
// ignore, or cannot time (which the sync reports).
func needsCleanup(job *batch.Job) bool {
	d, err := decide(observed{job: job})
	return err != nil || !d.finishedAt.IsZero()
}

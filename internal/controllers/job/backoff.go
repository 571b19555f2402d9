package job

import (
	"fmt"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
)

const (
	// BackoffBaseAnnotation sets a Job's first retry delay (a Go duration
	// such as "1s"). A quartet extension, opt-in per Job.
	BackoffBaseAnnotation = "quartet.dev/backoff-base"
	// BackoffMaxAnnotation caps a Job's retry delay (a Go duration such as
	// "30s"). A quartet extension, opt-in per Job.
	BackoffMaxAnnotation = "quartet.dev/backoff-max"
)

// retryPolicy is the pod failure back-off for one Job: the delay before the
// n-th consecutive failure is replaced is min(base * 2^(n-1), max).
type retryPolicy struct{ base, max time.Duration }

// defaultRetry is upstream's: 10s before recreating a pod after the first
// failure, doubling with each further failure up to 10 minutes.
var defaultRetry = retryPolicy{base: 10 * time.Second, max: 10 * time.Minute}

// retryPolicyFor reads the Job's quartet.dev/backoff-* annotations. Each
// value that is absent or unusable falls back to upstream's default; the
// returned problems describe the unusable ones so the caller can warn.
func retryPolicyFor(job *batch.Job) (retryPolicy, []string) {
	policy := defaultRetry
	var problems []string
	read := func(key string, into *time.Duration) {
		text, ok := job.Annotations[key]
		if !ok {
			return
		}
		d, err := time.ParseDuration(text)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s=%q is not a duration", key, text))
		case d < 0:
			problems = append(problems, fmt.Sprintf("%s=%q is negative", key, text))
		default:
			*into = d
		}
	}
	read(BackoffBaseAnnotation, &policy.base)
	read(BackoffMaxAnnotation, &policy.max)
	return policy, problems
}

// delay is how long to wait after the last of failures consecutive failures.
func (r retryPolicy) delay(failures int32) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := r.base
	for i := int32(1); i < failures && d > 0; i++ {
		if d >= r.max-d {
			// The next doubling reaches the cap (and could overflow).
			return r.max
		}
		d *= 2
	}
	return min(d, r.max)
}

// remaining is the part of the delay still to wait at now.
func (r retryPolicy) remaining(failures int32, last time.Time, now time.Time) time.Duration {
	d := r.delay(failures)
	if d == 0 {
		return 0
	}
	return max(0, d-now.Sub(last))
}

// backoffRecord is the controller's memory of a Job's failures since its
// last success. It lives only in memory, like upstream's: after a restart
// the Job's pods are counted afresh and the delay starts over.
type backoffRecord struct {
	// failures counts pod failures after the latest success.
	failures int32
	// lastFailure is the finish time of the latest of those failures.
	lastFailure time.Time
}

// advance folds newly finished pods into the record. A success resets the
// count to the failures that finished after it.
func (b backoffRecord) advance(succeeded, failed []*v1.Pod) backoffRecord {
	if len(succeeded) == 0 && len(failed) == 0 {
		return b
	}
	var lastSuccess time.Time
	for _, p := range succeeded {
		if t := finishTime(p); t.After(lastSuccess) {
			lastSuccess = t
		}
	}
	next := backoffRecord{}
	if len(succeeded) == 0 {
		next.failures = b.failures
	}
	for _, p := range failed {
		if t := finishTime(p); len(succeeded) == 0 || t.After(lastSuccess) {
			next.failures++
			if t.After(next.lastFailure) {
				next.lastFailure = t
			}
		}
	}
	return next
}

// RetryDelay is how long the controller waits, after the last of failures
// consecutive pod failures of job, before it creates the next pod: its own
// rule, with the Job's quartet.dev/backoff-* annotations (unusable values
// fall back to the defaults). Exported for `quartet explain --live`, which
// says until when a Job is in back-off.
func RetryDelay(job *batch.Job, failures int32) time.Duration {
	policy, _ := retryPolicyFor(job)
	return policy.delay(failures)
}

// Package job is quartet's Job controller: it runs a Job's pods until enough of
// them succeed or the Job fails, counting each finished pod exactly once through
// the batch.kubernetes.io/job-tracking finalizer.
//
// controller.go claims a Job's pods and routes pod events (a Job syncs at once
// when half a wave of its pods has finished, else after the batch period);
// plan.go decides in three pure stages, decide (pods to create and delete, the
// status if they succeed), track (the finished pods whose finalizer goes, and
// the status recording them first) and settle (the status once it has gone);
// apply.go makes the writes and remembers them in a kit.OwnWrites, whose
// unseen finalizer removals keep pods from being counted twice. How it differs
// from upstream's is listed in docs/job.md.
package job

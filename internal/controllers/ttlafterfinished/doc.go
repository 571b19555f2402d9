// Package ttlafterfinished is quartet's TTL-after-finished controller: it
// deletes a finished Job ttlSecondsAfterFinished after it finished, and with
// it, through the garbage collector, the Job's pods.
//
// controller.go waits on the delaying queue until each Job's TTL runs out
// and re-reads the Job past the cache before deleting it; plan.go decides
// (decide: a pure function of the Job and now); apply.go deletes. Unlike
// upstream's, it skips a Job whose finish time is missing instead of
// retrying it forever (docs/job.md).
package ttlafterfinished

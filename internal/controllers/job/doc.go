// Package job is quartet's Job controller: it runs a Job's pods until enough of
// them succeed or the Job fails, counting each finished pod exactly once through
// the batch.kubernetes.io/job-tracking finalizer.
//
// The decision for one Job is a pure function (plan.go) of the Job, its pods,
// the controller's in-memory memory of them and the time; controller.go feeds
// it from informers and apply.go carries out the writes it asks for.
package job

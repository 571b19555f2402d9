package job

import (
	"sync"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// The Job controller's metrics carry the names, labels and buckets of
// upstream's (kube-controller-manager's job_controller_* family), so that
// dashboards made for upstream's keep working.
const metricsSubsystem = "job_controller"

// Label values, as upstream's.
const (
	actionReconciling = "reconciling"
	actionTracking    = "tracking"
	actionPodsCreated = "pods_created"
	actionPodsDeleted = "pods_deleted"
)

var (
	syncDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem: metricsSubsystem, Name: "job_sync_duration_seconds",
		Help:    "The time it took to sync a job",
		Buckets: metrics.ExponentialBuckets(0.004, 2, 15), StabilityLevel: metrics.STABLE,
	}, []string{"completion_mode", "result", "action"})
	syncs              = counterVec("job_syncs_total", metrics.STABLE, "The number of job syncs", "completion_mode", "result", "action")
	jobsFinished       = counterVec("jobs_finished_total", metrics.STABLE, "The number of finished jobs", "completion_mode", "result", "reason")
	podsFinished       = counterVec("job_pods_finished_total", metrics.STABLE, "The number of finished Pods that are fully tracked", "completion_mode", "result")
	trackingFinalizers = counterVec("terminated_pods_tracking_finalizer_total", metrics.BETA,
		"The number of terminated pods (phase=Failed|Succeeded) that have the finalizer batch.kubernetes.io/job-tracking; "+
			`the event label is "add" (a pod became one) or "delete" (it no longer is: finalizer removed, or pod gone)`,
		"event")

	failurePolicyActions = counterVec("pod_failures_handled_by_failure_policy_total", metrics.BETA,
		"Failed pods whose tracking ended under a podFailurePolicy rule, by the rule's action: "+
			"FailJob, Ignore, Count or FailIndex (pods no rule matched are not counted)",
		"action")
	finishedIndexes = counterVec("job_finished_indexes_total", metrics.ALPHA,
		`Indexes of Indexed Jobs newly counted as finished; status "succeeded" or "failed", `+
			`backoffLimit "perIndex" (the Job sets backoffLimitPerIndex) or "global"`,
		"status", "backoffLimit")
	podCreations = counterVec("job_pods_creation_total", metrics.ALPHA,
		`Pod creations the Job controller attempted; reason "new", "recreate_terminating_or_failed" `+
			`(the Job has failed or terminating pods) or "recreate_failed" (podReplacementPolicy Failed, `+
			`and failed pods), status "succeeded" or "failed" (the create call was refused)`,
		"reason", "status")
	externalJobs = counterVec("jobs_by_external_controller_total", metrics.ALPHA,
		"Jobs seen whose spec.managedBy names another controller, by that name", "controller_name")
	staleSkips = counterVec("stale_sync_skips_total", metrics.ALPHA,
		"Job syncs skipped because the informer cache did not yet show the controller's own last status write of the Job",
		"group", "resource")

	// quartet's back-off annotations (quartet.dev/backoff-base, -max).
	retryDelays = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "quartet", Subsystem: metricsSubsystem, Name: "retry_delay_seconds",
		Help: "The delay the Job controller sets before replacing failed pods, observed each time a sync finds " +
			"new consecutive failures; policy \"annotations\" when the Job's quartet.dev/backoff-base or " +
			"-max annotation set it, \"default\" otherwise",
		Buckets: metrics.ExponentialBuckets(0.1, 2, 14), StabilityLevel: metrics.ALPHA,
	}, []string{"policy"})
	invalidBackoff = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "quartet", Subsystem: metricsSubsystem, Name: "invalid_backoff_annotations_total",
		Help: "Jobs whose quartet.dev/backoff-* annotations are unusable (the default delay is used), " +
			"counted once per Job and value, when the warning event is recorded",
		StabilityLevel: metrics.ALPHA,
	})
)

// counterVec is a counter of the Job controller's subsystem.
func counterVec(name string, level metrics.StabilityLevel, help string, labels ...string) *metrics.CounterVec {
	return metrics.NewCounterVec(&metrics.CounterOpts{Subsystem: metricsSubsystem, Name: name, Help: help, StabilityLevel: level}, labels)
}

// RegisterMetrics adds the metrics to the registry once, as the process starts
// this controller: never beside upstream's, whose metrics have the same names.
var RegisterMetrics = sync.OnceFunc(func() {
	legacyregistry.MustRegister(syncDuration, syncs, jobsFinished, podsFinished, trackingFinalizers,
		failurePolicyActions, finishedIndexes, podCreations, externalJobs, staleSkips, retryDelays, invalidBackoff)
})

// completionModeLabel is the completion_mode label of a Job (a sync skips
// a Job of another mode before any metric is recorded).
func completionModeLabel(job *batch.Job) string {
	return string(ptr.Deref(job.Spec.CompletionMode, batch.NonIndexedCompletion))
}

// recordSync counts one sync of a Job that ran (past the checks that skip
// it), with what it did.
func recordSync(job *batch.Job, started time.Time, now time.Time, action string, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	mode := completionModeLabel(job)
	syncDuration.WithLabelValues(mode, result, action).Observe(now.Sub(started).Seconds())
	syncs.WithLabelValues(mode, result, action).Inc()
}

// syncAction is the action label of a sync's decision: pods created, pods
// deleted, only finished pods counted, or the Job ended.
func syncAction(d *decision) string {
	switch {
	case len(d.creates) > 0:
		return actionPodsCreated
	case len(d.deletes) > 0:
		return actionPodsDeleted
	case d.finishing != nil:
		return actionReconciling
	}
	return actionTracking
}

// recordStatus counts what a status write moved: pods newly counted as
// succeeded (for an Indexed Job, completed indexes) or failed, and the Job
// finishing.
func recordStatus(job *batch.Job, before, after *batch.JobStatus) {
	mode := completionModeLabel(job)
	succeeded := int(after.Succeeded) - int(before.Succeeded)
	if isIndexed(job) {
		count := func(text string) int {
			set, _ := parseIndexSet(text, completionsOf(job))
			return set.count()
		}
		succeeded = count(after.CompletedIndexes) - count(before.CompletedIndexes)
		limit := "global"
		if job.Spec.BackoffLimitPerIndex != nil {
			limit = "perIndex"
		}
		addPositive(finishedIndexes, succeeded, "succeeded", limit)
		failed := count(ptr.Deref(after.FailedIndexes, "")) - count(ptr.Deref(before.FailedIndexes, ""))
		addPositive(finishedIndexes, failed, "failed", limit)
	}
	addPositive(podsFinished, succeeded, mode, "succeeded")
	addPositive(podsFinished, int(after.Failed)-int(before.Failed), mode, "failed")
	for t, result := range map[batch.JobConditionType]string{batch.JobComplete: "succeeded", batch.JobFailed: "failed"} {
		if c := trueCondition(after, t); c != nil && trueCondition(before, t) == nil {
			jobsFinished.WithLabelValues(mode, result, c.Reason).Inc()
		}
	}
}

// recordCreations counts a sync's pod create calls, created or refused, by
// why the pods were made: new, or replacing failed (and, unless
// podReplacementPolicy is Failed, terminating) pods.
func recordCreations(job *batch.Job, d *decision, created, refused int32) {
	hasFailed := job.Status.Failed > 0 || len(d.uncountedFailed) > 0
	reason := "new"
	switch {
	case hasFailed && replacesOnlyFailed(job):
		reason = "recreate_failed"
	case hasFailed || ptr.Deref(job.Status.Terminating, 0) > 0:
		reason = "recreate_terminating_or_failed"
	}
	addPositive(podCreations, int(created), reason, "succeeded")
	addPositive(podCreations, int(refused), reason, "failed")
}

// addPositive adds n, when it is positive, to the counter of the labels.
func addPositive(counter *metrics.CounterVec, n int, labels ...string) {
	if n > 0 {
		counter.WithLabelValues(labels...).Add(float64(n))
	}
}

// recordFailurePolicy counts the failed pods whose tracking finalizer was
// removed (each once) by the podFailurePolicy rule that matched them.
func recordFailurePolicy(job *batch.Job, pods []*v1.Pod, dropped sets.Set[types.UID]) {
	for _, p := range pods {
		if !dropped.Has(p.UID) || !isFailed(job, p) {
			continue
		}
		if v := judgeFailure(job.Spec.PodFailurePolicy, p); v.action != "" {
			failurePolicyActions.WithLabelValues(string(v.action)).Inc()
		}
	}
}

// recordTrackingFinalizer counts a pod event that makes a terminated pod
// with the tracking finalizer appear or disappear.
func recordTrackingFinalizer(ev kit.ChildEvent[*v1.Pod]) {
	was := ev.Old != nil && finishedWithFinalizer(ev.Old)
	is := ev.Cur != nil && finishedWithFinalizer(ev.Cur)
	if ev.Op == kit.Deleted {
		was, is = is, false
	}
	switch {
	case is && !was:
		trackingFinalizers.WithLabelValues("add").Inc()
	case was && !is:
		trackingFinalizers.WithLabelValues("delete").Inc()
	}
}

func finishedWithFinalizer(p *v1.Pod) bool {
	return podutil.IsPodPhaseTerminal(p.Status.Phase) && hasTrackingFinalizer(p)
}

// recordRetryDelay observes the retry delay a sync sets when it finds new
// consecutive failures (d.backoff has more than the sync started with).
func recordRetryDelay(d *decision) {
	if d.backoff.failures <= d.in.backoff.failures {
		return
	}
	policy := "default"
	if d.in.retry != defaultRetry {
		policy = "annotations"
	}
	retryDelays.WithLabelValues(policy).Observe(d.in.retry.delay(d.backoff.failures).Seconds())
}

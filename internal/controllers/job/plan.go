package job

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// Limits that keep one sync of a big Job short and its status small.
const (
	// maxUncounted bounds status.uncountedTerminatedPods (and the finalizers
	// removed) per sync, keeping the status object near 20 KB.
	maxUncounted        = 500
	maxPodWritesPerSync = 500 // pods created or deleted
)

// The conditions' messages and reasons, equal to upstream's.
const (
	msgBackoffLimit     = "Job has reached the specified backoff limit"
	msgDeadline         = "Job was active longer than specified deadline"
	msgMaxFailedIndexes = "Job has exceeded the specified maximal number of failed indexes"
	msgFailedIndexes    = "Job has failed indexes"
	msgCompletions      = "Reached expected number of succeeded pods"

	reasonJobSuspended = "JobSuspended"
	msgJobSuspended    = "Job suspended"
	reasonJobResumed   = "JobResumed"
	msgJobResumed      = "Job resumed"
)

// observed is everything the decision for one Job depends on.
type observed struct {
	// job comes from the informer cache and is never modified.
	job *batch.Job
	// pods are the Job's claimed pods, also from the cache.
	pods []*v1.Pod
	now  time.Time
	// settled: every pod creation and deletion this controller issued for
	// the Job shows in pods; only then may it create or delete more.
	settled bool
	// finalizerGone holds pods whose tracking finalizer this controller has
	// removed while pods may still show it.
	finalizerGone map[types.UID]bool
	// backoff is the memory of failures since the last success.
	backoff backoffRecord
	retry   retryPolicy
}

type podDelete struct {
	pod *v1.Pod
	// dropFinalizer removes the tracking finalizer first, so the pod is never
	// counted: it is surplus, or the Job is suspended. Pods deleted because the
	// Job is finishing keep it until they are counted.
	dropFinalizer bool
}

// decision is the first stage of a sync: which pods to create and delete,
// and the status the Job has if those writes succeed.
type decision struct {
	in *observed

	creates []*v1.Pod
	deletes []podDelete

	// status is the Job's status once the pod writes succeed; counters of
	// finished pods are settled later, in track.
	status batch.JobStatus
	// finishing is the condition the Job is heading to: a new FailureTarget
	// or SuccessCriteriaMet, or the final Failed or Complete when the interim
	// one is already recorded.
	finishing *batch.JobCondition
	// requeue, when positive, is when the Job must be looked at again even
	// if nothing changes: a retry delay or the active deadline.
	requeue time.Duration
	events  []kit.Event
	// backoff is the failure memory including the pods finished since the
	// last sync, to keep once their counts are written.
	backoff backoffRecord

	// What track needs from the classification of the pods.
	uncountedSucceeded, uncountedFailed sets.Set[types.UID]
	prevSucceeded                       indexSet
	succeeded                           indexSet
	failedIndexes                       indexSet
	holdForReplacement                  map[int]*v1.Pod
	// indexes is each pod's completion index (noIndex if none), read once per
	// sync; only an Indexed Job fills it (a NonIndexed Job's 0 decides nothing).
	indexes map[*v1.Pod]int
}

// outcome reports how the pod writes of a decision went.
type outcome struct {
	// createsFailed counts the creations that failed or were not attempted.
	createsFailed int32
	// deletesFailed counts failed deletions; readyDeletesFailed, of ready pods.
	deletesFailed, readyDeletesFailed int32
}

// tracking is the second stage: the status to write before any tracking
// finalizer is removed, and the pods whose finalizer to remove after.
type tracking struct {
	in *observed
	// status records every pod about to lose its finalizer, in
	// uncountedTerminatedPods or in completedIndexes.
	status         batch.JobStatus
	dropFinalizers []*v1.Pod
	// withFinalizer are the pods still tracked by a finalizer.
	withFinalizer sets.Set[types.UID]
	// final is the Complete or Failed condition to add once every finished
	// pod is counted and no pod is terminating.
	final *batch.JobCondition
	// capped: more finished pods wait for the next sync.
	capped bool
}

// settlement is the last stage: the status once the finalizers are gone.
type settlement struct {
	status   batch.JobStatus
	finished bool
	events   []kit.Event // only when finished
}

func isIndexed(job *batch.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batch.IndexedCompletion
}

func isSuspended(job *batch.Job) bool {
	return ptr.Deref(job.Spec.Suspend, false)
}

// replacesOnlyFailed is podReplacementPolicy Failed: a terminating pod still
// occupies its slot until it has fully failed.
func replacesOnlyFailed(job *batch.Job) bool {
	return ptr.Deref(job.Spec.PodReplacementPolicy, batch.TerminatingOrFailed) == batch.Failed
}

// isFailed is a pod that has failed, or, unless only failed pods are
// replaced, one being deleted before it could succeed.
func isFailed(job *batch.Job, p *v1.Pod) bool {
	return p.Status.Phase == v1.PodFailed ||
		!replacesOnlyFailed(job) && p.DeletionTimestamp != nil && p.Status.Phase != v1.PodSucceeded
}

func completionsOf(job *batch.Job) int {
	return int(ptr.Deref(job.Spec.Completions, 0))
}

func trueCondition(st *batch.JobStatus, t batch.JobConditionType) *batch.JobCondition {
	if i := slices.IndexFunc(st.Conditions, func(c batch.JobCondition) bool { return c.Type == t && c.Status == v1.ConditionTrue }); i >= 0 {
		return &st.Conditions[i]
	}
	return nil
}

// IsFinished reports whether the Job is Complete or Failed.
func IsFinished(job *batch.Job) bool {
	return trueCondition(&job.Status, batch.JobComplete) != nil || trueCondition(&job.Status, batch.JobFailed) != nil
}

func newCondition(t batch.JobConditionType, status v1.ConditionStatus, reason, message string, now time.Time) *batch.JobCondition {
	at := metav1.NewTime(now)
	return &batch.JobCondition{Type: t, Status: status, Reason: reason, Message: message, LastProbeTime: at, LastTransitionTime: at}
}

// setCondition makes the condition of type t read status/reason/message: it
// rewrites a differing one in place, appends a missing one unless it would
// be False, and reports whether anything changed.
func setCondition(st *batch.JobStatus, t batch.JobConditionType, status v1.ConditionStatus, reason, message string, now time.Time) bool {
	i := slices.IndexFunc(st.Conditions, func(c batch.JobCondition) bool { return c.Type == t })
	switch {
	case i < 0 && status == v1.ConditionFalse:
		return false
	case i < 0:
		st.Conditions = append(st.Conditions, *newCondition(t, status, reason, message, now))
	case st.Conditions[i].Status == status && st.Conditions[i].Reason == reason && st.Conditions[i].Message == message:
		return false
	default:
		st.Conditions[i] = *newCondition(t, status, reason, message, now)
	}
	return true
}

// decide is the first, pure stage of a sync (see decision).
func decide(in *observed) *decision {
	job := in.job
	d := &decision{in: in, status: *job.Status.DeepCopy()}
	st := &d.status
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batch.UncountedTerminatedPods{}
	}
	d.uncountedSucceeded = sets.New(st.UncountedTerminatedPods.Succeeded...)
	d.uncountedFailed = sets.New(st.UncountedTerminatedPods.Failed...)
	if isIndexed(job) {
		d.indexes = make(map[*v1.Pod]int, len(in.pods))
		for _, p := range in.pods {
			d.indexes[p] = completionIndexOf(p)
		}
	}
	c := d.classify()
	succeeded := st.Succeeded + int32(len(c.newSucceeded)) + int32(len(d.uncountedSucceeded))
	failed := st.Failed + c.newCountedFailures + int32(len(d.uncountedFailed))
	if st.StartTime == nil && !isSuspended(job) {
		st.StartTime = ptr.To(metav1.NewTime(in.now))
	}
	d.backoff = in.backoff.advance(c.newSucceeded, c.newFailed)
	d.judgeEnding(failed, c.failJobMessage)
	if isIndexed(job) {
		succeeded = d.judgeIndexes(c.active)
	}
	d.act(c, succeeded)
	return d
}

// podCounts is what decide reads off the pods, once.
type podCounts struct {
	active                  []*v1.Pod
	newSucceeded, newFailed []*v1.Pod
	terminating, ready      int32
	newCountedFailures      int32
	// failJobMessage is the message of the first FailJob rule a pod matched.
	failJobMessage string
}

// classify sorts the pods: running, terminating, and newly finished.
func (d *decision) classify() (c podCounts) {
	job := d.in.job
	completions := completionsOf(job)
	for _, p := range d.in.pods {
		if controller.IsPodActive(p) {
			c.active = append(c.active, p)
			if kit.IsReady(p) {
				c.ready++
			}
		} else if controller.IsPodTerminating(p) {
			c.terminating++
		}
		failed := isFailed(job, p)
		if failed && c.failJobMessage == "" && job.Spec.PodFailurePolicy != nil {
			c.failJobMessage = judgeFailure(job.Spec.PodFailurePolicy, p).failJob
		}
		if !d.tracked(p) || (isIndexed(job) && (d.indexes[p] == noIndex || d.indexes[p] >= completions)) {
			continue
		}
		if !d.uncountedSucceeded.Has(p.UID) && p.Status.Phase == v1.PodSucceeded {
			c.newSucceeded = append(c.newSucceeded, p)
		}
		if !d.uncountedFailed.Has(p.UID) && failed {
			c.newFailed = append(c.newFailed, p)
			if judgeFailure(job.Spec.PodFailurePolicy, p).counts {
				c.newCountedFailures++
			}
		}
	}
	return c
}

// judgeEnding decides whether the Job is heading to an end, given failed
// (the failures counted toward backoffLimit) and the message of a FailJob
// rule a pod matched. The order of the checks is the order in which
// upstream lets one ending win over another.
func (d *decision) judgeEnding(failed int32, failJobMessage string) {
	left, deadline := d.deadlineLeft()
	switch scm, ft := trueCondition(&d.status, batch.JobSuccessCriteriaMet), trueCondition(&d.status, batch.JobFailureTarget); {
	case scm != nil:
		d.finishing = scm.DeepCopy()
	case ft != nil:
		d.finishing = newCondition(batch.JobFailed, v1.ConditionTrue, ft.Reason, ft.Message, d.in.now)
	case failJobMessage != "":
		d.finishing = d.failureTarget(batch.JobReasonPodFailurePolicy, failJobMessage)
	case failed > ptr.Deref(d.in.job.Spec.BackoffLimit, 6) || d.restartsExceedLimit():
		d.finishing = d.failureTarget(batch.JobReasonBackoffLimitExceeded, msgBackoffLimit)
	case deadline && left <= 0:
		d.finishing = d.failureTarget(batch.JobReasonDeadlineExceeded, msgDeadline)
	case deadline:
		d.requeueIn(left)
	}
}

// judgeIndexes is judgeEnding's part for an Indexed Job: the succeeded
// indexes, the failed ones (with backoffLimitPerIndex), and the success
// policy. It returns the number of succeeded indexes.
func (d *decision) judgeIndexes(active []*v1.Pod) int32 {
	job, st := d.in.job, &d.status
	completions := completionsOf(job)
	d.prevSucceeded, _ = parseIndexSet(st.CompletedIndexes, completions)
	var fresh []int
	for _, p := range d.in.pods {
		if ix := d.indexes[p]; p.Status.Phase == v1.PodSucceeded && ix != noIndex && ix < completions && hasTrackingFinalizer(p) {
			fresh = append(fresh, ix)
		}
	}
	d.succeeded = d.prevSucceeded.withIndexes(fresh)
	if job.Spec.BackoffLimitPerIndex != nil {
		d.failedIndexes = d.collectFailedIndexes(completions)
		switch nFailed := d.failedIndexes.count(); {
		case d.finishing != nil:
		case job.Spec.MaxFailedIndexes != nil && nFailed > int(*job.Spec.MaxFailedIndexes):
			d.finishing = d.failureTarget(batch.JobReasonMaxFailedIndexesExceeded, msgMaxFailedIndexes)
		case nFailed > 0 && nFailed+d.succeeded.count() >= completions:
			d.finishing = d.failureTarget(batch.JobReasonFailedIndexes, msgFailedIndexes)
		}
		d.holdForReplacement = d.failedPodsAwaitingReplacement(active, completions)
	}
	if msg, ok := successPolicyMet(job.Spec.SuccessPolicy, completions, d.succeeded); ok && d.finishing == nil {
		d.finishing = newCondition(batch.JobSuccessCriteriaMet, v1.ConditionTrue, batch.JobReasonSuccessPolicy, msg, d.in.now)
	}
	return int32(d.succeeded.count())
}

// act decides the pod writes: a Job heading to an end stops every running
// pod; otherwise its running pods are sized to parallelism and the
// remaining completions, and it completes, suspends or resumes. It sets the
// active, ready and terminating counts the Job has once the writes succeed.
func (d *decision) act(c podCounts, succeeded int32) {
	job, st := d.in.job, &d.status
	managed := d.in.settled && job.DeletionTimestamp == nil
	stopping := d.finishing != nil
	switch {
	case stopping:
		// Stop everything still running; the pods keep their finalizer until
		// they are counted.
		for _, p := range c.active {
			d.deletes = append(d.deletes, podDelete{pod: p})
		}
		if !d.in.settled {
			// A pod this controller created may not be visible yet: it cannot
			// have been stopped, so the Job cannot end in this sync.
			d.finishing = nil
		}
	case managed:
		d.manage(c.active, succeeded, c.terminating)
	}
	ready := c.ready
	for _, del := range d.deletes {
		if kit.IsReady(del.pod) {
			ready--
		}
	}
	st.Active = int32(len(c.active) - len(d.deletes) + len(d.creates))
	st.Ready = ptr.To(ready)
	st.Terminating = ptr.To(c.terminating + int32(len(d.deletes)))
	switch {
	case stopping:
	// A work queue (no completions) is done once any pod succeeded and none runs.
	case st.Active == 0 && succeeded >= ptr.Deref(job.Spec.Completions, 1):
		d.finishing = newCondition(batch.JobSuccessCriteriaMet, v1.ConditionTrue, batch.JobReasonCompletionsReached, msgCompletions, d.in.now)
	case managed && isSuspended(job) && setCondition(st, batch.JobSuspended, v1.ConditionTrue, reasonJobSuspended, msgJobSuspended, d.in.now):
		d.events = append(d.events, kit.Event{Type: v1.EventTypeNormal, Reason: ReasonSuspended, Message: msgJobSuspended})
		// The deadline counts continuous activity: it starts over on resume.
		st.StartTime = nil
	case managed && !isSuspended(job) && setCondition(st, batch.JobSuspended, v1.ConditionFalse, reasonJobResumed, msgJobResumed, d.in.now):
		d.events = append(d.events, kit.Event{Type: v1.EventTypeNormal, Reason: ReasonResumed, Message: msgJobResumed})
		st.StartTime = ptr.To(metav1.NewTime(d.in.now))
	}
}

// tracked: the pod's finalizer still stands for a finish not yet counted.
func (d *decision) tracked(p *v1.Pod) bool {
	return hasTrackingFinalizer(p) && !d.in.finalizerGone[p.UID]
}

func (d *decision) failureTarget(reason, message string) *batch.JobCondition {
	return newCondition(batch.JobFailureTarget, v1.ConditionTrue, reason, message, d.in.now)
}

func (d *decision) requeueIn(after time.Duration) {
	// A zero or negative "after" still asks for a prompt look.
	after = max(after, time.Nanosecond)
	if d.requeue == 0 || after < d.requeue {
		d.requeue = after
	}
}

// restartsExceedLimit: with restartPolicy OnFailure, container restarts in
// running pods are the retries.
func (d *decision) restartsExceedLimit() bool {
	job := d.in.job
	if job.Spec.Template.Spec.RestartPolicy != v1.RestartPolicyOnFailure {
		return false
	}
	var total int32
	for _, p := range d.in.pods {
		total += restarts(p)
	}
	// A limit of 0 allows no restart at all.
	return total >= max(ptr.Deref(job.Spec.BackoffLimit, 6), 1)
}

// deadlineLeft is the time left before activeDeadlineSeconds, when it runs.
func (d *decision) deadlineLeft() (time.Duration, bool) {
	job, start := d.in.job, d.status.StartTime
	if job.Spec.ActiveDeadlineSeconds == nil || start == nil || isSuspended(job) {
		return 0, false
	}
	return time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - d.in.now.Sub(start.Time), true
}

// collectFailedIndexes adds to status.failedIndexes the indexes whose pod
// failed for good: by a FailIndex rule, or after backoffLimitPerIndex
// counted failures.
func (d *decision) collectFailedIndexes(completions int) indexSet {
	job := d.in.job
	prev, _ := parseIndexSet(ptr.Deref(job.Status.FailedIndexes, ""), completions)
	var fresh []int
	for _, p := range d.in.pods {
		ix := d.indexes[p]
		if ix == noIndex || ix >= completions || !hasTrackingFinalizer(p) || !isFailed(job, p) {
			continue
		}
		v := judgeFailure(job.Spec.PodFailurePolicy, p)
		if v.action == batch.PodFailurePolicyActionFailIndex || (v.counts && indexFailures(p) >= *job.Spec.BackoffLimitPerIndex) {
			fresh = append(fresh, ix)
		}
	}
	return prev.withIndexes(fresh)
}

// failedPodsAwaitingReplacement picks, for each index that needs a new pod
// after a failure, the failed pod the replacement inherits its failure count
// from. Those pods keep their finalizer (and so stay around) until the
// replacement exists.
func (d *decision) failedPodsAwaitingReplacement(active []*v1.Pod, completions int) map[int]*v1.Pod {
	busy := sets.New[int]()
	for _, p := range active {
		busy.Insert(d.indexes[p])
	}
	held := map[int]*v1.Pod{}
	for _, p := range d.in.pods {
		if !d.tracked(p) || !isFailed(d.in.job, p) {
			continue
		}
		ix := d.indexes[p]
		if ix == noIndex || ix >= completions || d.succeeded.has(ix) || d.failedIndexes.has(ix) || busy.Has(ix) {
			continue
		}
		prev, ok := held[ix]
		if !ok || (indexAllFailures(prev) <= indexAllFailures(p) && !finishTime(p).Before(finishTime(prev))) {
			held[ix] = p
		}
	}
	return held
}

// manage sizes the running pods to what parallelism and the remaining
// completions ask for.
func (d *decision) manage(active []*v1.Pod, succeeded, terminating int32) {
	job := d.in.job
	remove := func(pods []*v1.Pod) {
		for _, p := range pods {
			d.deletes = append(d.deletes, podDelete{pod: p, dropFinalizer: true})
		}
	}
	if isSuspended(job) {
		remove(d.surplus(active, len(active)))
		return
	}
	nActive := int32(len(active))
	want := ptr.Deref(job.Spec.Parallelism, 1)
	switch {
	case job.Spec.Completions != nil:
		want = max(0, min(*job.Spec.Completions-succeeded, want))
	case succeeded > 0:
		// A work queue: once a pod has succeeded, the rest finish on their own.
		want = nActive
	}
	if excess := d.surplus(active, int(max(0, nActive-want))); len(excess) > 0 {
		// One kind of pod write per sync: deletions first.
		remove(excess[:min(len(excess), maxPodWritesPerSync)])
		return
	}
	occupied := nActive
	if replacesOnlyFailed(job) {
		occupied += terminating
	}
	missing := want - occupied
	if missing <= 0 {
		return
	}
	if job.Spec.BackoffLimitPerIndex == nil {
		if wait := d.in.retry.remaining(d.backoff.failures, d.backoff.lastFailure, d.in.now); wait > 0 {
			d.requeueIn(wait)
			return
		}
	}
	missing = min(missing, maxPodWritesPerSync)
	if !isIndexed(job) {
		for range missing {
			d.creates = append(d.creates, d.newPod(noIndex))
		}
		return
	}
	indexes := d.pendingIndexes(int(missing))
	if job.Spec.BackoffLimitPerIndex != nil {
		var wait time.Duration
		if indexes, wait = d.indexesPastBackoff(indexes); len(indexes) == 0 && wait > 0 {
			d.requeueIn(wait)
		}
	}
	for _, ix := range indexes {
		d.creates = append(d.creates, d.newPod(ix))
	}
}

// surplus picks at least n active pods to delete; for an Indexed Job, always
// those without a valid index and all but one pod of a repeated index.
func (d *decision) surplus(active []*v1.Pod, n int) []*v1.Pod {
	var picked, rest []*v1.Pod
	if isIndexed(d.in.job) {
		completions := completionsOf(d.in.job)
		byIndex := map[int][]*v1.Pod{}
		for _, p := range active {
			if ix := d.indexes[p]; ix == noIndex || ix >= completions {
				picked = append(picked, p)
			} else {
				byIndex[ix] = append(byIndex[ix], p)
			}
		}
		for _, ix := range slices.Sorted(maps.Keys(byIndex)) {
			group := byIndex[ix]
			if len(group) > 1 {
				sortForDeletion(group)
				picked = append(picked, group[:len(group)-1]...)
				group = group[len(group)-1:]
			}
			rest = append(rest, group...)
		}
	} else {
		rest = slices.Clone(active)
	}
	if len(picked) < n {
		sortForDeletion(rest)
		picked = append(picked, rest[:min(len(rest), n-len(picked))]...)
	}
	return picked
}

// pendingIndexes returns up to n of the lowest indexes that have no running
// pod and are neither succeeded nor failed.
func (d *decision) pendingIndexes(n int) []int {
	job := d.in.job
	var taken []int
	for _, p := range d.in.pods {
		if ix := d.indexes[p]; ix != noIndex && (controller.IsPodActive(p) || replacesOnlyFailed(job) && controller.IsPodTerminating(p)) {
			taken = append(taken, ix)
		}
	}
	busy := d.succeeded.withIndexes(taken).union(d.failedIndexes)
	return busy.firstMissing(n, completionsOf(job))
}

// indexesPastBackoff keeps the indexes whose own retry delay has passed,
// and returns the shortest wait among the others.
func (d *decision) indexesPastBackoff(indexes []int) (ready []int, wait time.Duration) {
	for _, ix := range indexes {
		var left time.Duration
		if prev := d.holdForReplacement[ix]; prev != nil {
			left = d.in.retry.remaining(indexAllFailures(prev)+1, finishTime(prev), d.in.now)
		}
		if left == 0 {
			ready = append(ready, ix)
		} else if wait == 0 || left < wait {
			wait = left
		}
	}
	return ready, wait
}

// newPod builds the pod for one more run of the Job, at completion index ix
// for an Indexed Job.
func (d *decision) newPod(ix int) *v1.Pod {
	job := d.in.job
	p := kit.PodFromTemplate(&job.Spec.Template, job, batch.SchemeGroupVersion.WithKind("Job"))
	if !slices.Contains(p.Finalizers, batch.JobTrackingFinalizer) {
		p.Finalizers = append(p.Finalizers, batch.JobTrackingFinalizer)
	}
	if ix == noIndex {
		return p
	}
	text := strconv.Itoa(ix)
	p.GenerateName = indexedNamePrefix(job.Name, ix)
	p.Labels[batch.JobCompletionIndexAnnotation] = text
	p.Annotations[batch.JobCompletionIndexAnnotation] = text
	p.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, ix)
	// Every container sees the index label as JOB_COMPLETION_INDEX, unless
	// it defines that variable itself.
	for c := range podutil.ContainerIter(&p.Spec, podutil.InitContainers|podutil.Containers) {
		if !slices.ContainsFunc(c.Env, func(e v1.EnvVar) bool { return e.Name == completionIndexEnv }) {
			c.Env = append(c.Env, v1.EnvVar{
				Name: completionIndexEnv,
				ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{
					FieldPath: fmt.Sprintf("metadata.labels['%s']", batch.JobCompletionIndexAnnotation),
				}},
			})
		}
	}
	if job.Spec.BackoffLimitPerIndex != nil {
		counted, ignored := d.inheritedFailures(ix)
		p.Annotations[batch.JobIndexFailureCountAnnotation] = strconv.Itoa(int(counted))
		if ignored > 0 {
			p.Annotations[batch.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(int(ignored))
		}
	}
	return p
}

// inheritedFailures carries the failure counts of the index's last failed
// pod, plus that pod's own failure, to its replacement.
func (d *decision) inheritedFailures(ix int) (counted, ignored int32) {
	if prev := d.holdForReplacement[ix]; prev != nil {
		counted = indexFailures(prev)
		ignored = annotationCount(prev, batch.JobIndexIgnoredFailureCountAnnotation)
		// Saturating: the annotations are user-writable, up to MaxInt32.
		if judgeFailure(d.in.job.Spec.PodFailurePolicy, prev).counts {
			counted = min(counted, math.MaxInt32-1) + 1
		} else {
			ignored = min(ignored, math.MaxInt32-1) + 1
		}
	}
	return counted, ignored
}

// maxGenerateNameLength leaves room for the five random characters the
// apiserver appends within a 63-character name.
const maxGenerateNameLength = 58

// indexedNamePrefix is "<job>-<index>-", shortening the Job name when the
// whole would not fit.
func indexedNamePrefix(jobName string, ix int) string {
	suffix := "-" + strconv.Itoa(ix) + "-"
	return jobName[:min(len(jobName), max(0, maxGenerateNameLength-len(suffix)))] + suffix
}

// track is the second, pure stage: given how the pod writes went, it picks
// the finished pods whose finalizer can go and records them in the status
// to write first.
func (d *decision) track(out outcome) *tracking {
	job := d.in.job
	t := &tracking{in: d.in, status: *d.status.DeepCopy()}
	st := &t.status
	finishing := d.finishing
	st.Active -= out.createsFailed
	if out.deletesFailed > 0 {
		st.Active += out.deletesFailed
		*st.Terminating -= out.deletesFailed
		*st.Ready += out.readyDeletesFailed
		// A pod still runs: the Job cannot end in this sync.
		finishing = nil
	}

	indexed := isIndexed(job)
	pods := d.in.pods
	if indexed {
		pods = slices.Clone(pods)
		slices.SortStableFunc(pods, func(a, b *v1.Pod) int { return d.indexes[a] - d.indexes[b] })
	}

	t.withFinalizer = make(sets.Set[types.UID], len(pods))
	for _, p := range pods {
		if d.tracked(p) {
			t.withFinalizer.Insert(p.UID)
		}
	}
	countRemovedFinalizers(st, t.withFinalizer.Has)

	d.pickFinalizers(t, pods, finishing)
	if indexed {
		st.Succeeded = int32(d.succeeded.count())
		st.CompletedIndexes = d.succeeded.String()
		st.FailedIndexes = nil
		if job.Spec.BackoffLimitPerIndex != nil {
			st.FailedIndexes = ptr.To(d.failedIndexes.String())
		}
	}

	t.final = d.finalCondition(st, finishing)
	return t
}

// pickFinalizers chooses the tracked pods whose finalizer goes in this
// sync, at most maxUncounted, and records each in t's status: a succeeded
// pod in uncountedTerminatedPods (for an Indexed Job, its index is in
// d.succeeded already), a failed one in uncountedTerminatedPods.
func (d *decision) pickFinalizers(t *tracking, pods []*v1.Pod, finishing *batch.JobCondition) {
	var newIndexes int
	job := d.in.job
	indexed, completions := isIndexed(job), completionsOf(job)
	unc := t.status.UncountedTerminatedPods
	failing := finishing != nil && finishing.Type != batch.JobSuccessCriteriaMet
	for _, p := range pods {
		failed := isFailed(job, p)
		if !d.tracked(p) || !d.canDropFinalizer(p, failed, finishing) {
			continue
		}
		t.dropFinalizers = append(t.dropFinalizers, p)
		wasFailed := d.uncountedFailed.Has(p.UID)
		switch {
		case p.Status.Phase == v1.PodSucceeded && !wasFailed:
			if indexed {
				if ix := d.indexes[p]; ix != noIndex && ix < completions && !d.prevSucceeded.has(ix) {
					newIndexes++
				}
			} else if !d.uncountedSucceeded.Has(p.UID) {
				unc.Succeeded = append(unc.Succeeded, p.UID)
			}
		case failed || failing:
			ix := d.indexes[p]
			if !wasFailed && (!indexed || (ix != noIndex && ix < completions)) && judgeFailure(job.Spec.PodFailurePolicy, p).counts {
				unc.Failed = append(unc.Failed, p.UID)
			}
		}
		if newIndexes+len(unc.Succeeded)+len(unc.Failed) >= maxUncounted {
			t.capped = true
			break
		}
	}
}

// finalCondition records in st the interim condition of finishing, when it
// is new, and returns the final one to add once every finished pod is
// counted: Failed after FailureTarget, Complete after SuccessCriteriaMet.
func (d *decision) finalCondition(st *batch.JobStatus, finishing *batch.JobCondition) *batch.JobCondition {
	switch {
	case finishing == nil:
		return nil
	case finishing.Type == batch.JobFailureTarget:
		// Record why the Job fails before its pods can disappear.
		st.Conditions = append(st.Conditions, *finishing)
		return newCondition(batch.JobFailed, v1.ConditionTrue, finishing.Reason, finishing.Message, d.in.now)
	case finishing.Type == batch.JobSuccessCriteriaMet:
		if trueCondition(st, batch.JobSuccessCriteriaMet) == nil {
			st.Conditions = append(st.Conditions, *finishing)
		}
		return newCondition(batch.JobComplete, v1.ConditionTrue, finishing.Reason, finishing.Message, d.in.now)
	}
	return finishing
}

// canDropFinalizer: a finished pod's finalizer goes once it is recorded,
// except a failed pod whose index still needs its replacement; when the Job
// is ending or being deleted every finalizer goes.
func (d *decision) canDropFinalizer(p *v1.Pod, failed bool, finishing *batch.JobCondition) bool {
	if d.in.job.DeletionTimestamp != nil || finishing != nil || p.Status.Phase == v1.PodSucceeded {
		return true
	}
	held := d.holdForReplacement[d.indexes[p]]
	return failed && (held == nil || held.UID != p.UID)
}

// countRemovedFinalizers moves the uncounted pods that no longer carry a
// finalizer into the succeeded and failed counters.
func countRemovedFinalizers(st *batch.JobStatus, withFinalizer func(types.UID) bool) {
	unc := st.UncountedTerminatedPods
	// The status is the stage's own copy: its lists may shrink in place.
	keep := func(uids []types.UID, counter *int32) []types.UID {
		kept := slices.DeleteFunc(uids, func(u types.UID) bool { return !withFinalizer(u) })
		*counter += int32(len(uids) - len(kept))
		return kept
	}
	unc.Succeeded = keep(unc.Succeeded, &st.Succeeded)
	unc.Failed = keep(unc.Failed, &st.Failed)
}

// settle is the third, pure stage: the dropped pods' finalizers gone, those
// pods are counted, and the Job ends when none is uncounted or terminating.
func (t *tracking) settle(dropped sets.Set[types.UID]) *settlement {
	s := &settlement{status: *t.status.DeepCopy()}
	st := &s.status
	countRemovedFinalizers(st, func(u types.UID) bool { return t.withFinalizer.Has(u) && !dropped.Has(u) })

	unc := st.UncountedTerminatedPods
	if t.final == nil || t.capped || len(unc.Succeeded)+len(unc.Failed) > 0 || ptr.Deref(st.Terminating, 0) > 0 {
		return s
	}
	f := t.final
	setCondition(st, f.Type, f.Status, f.Reason, f.Message, f.LastTransitionTime.Time)
	s.finished = true
	if f.Type == batch.JobComplete {
		st.CompletionTime = ptr.To(f.LastTransitionTime)
		if c := t.in.job.Spec.Completions; c != nil && st.Succeeded > *c {
			s.events = append(s.events, kit.Event{Type: v1.EventTypeWarning, Reason: ReasonTooManySucceededPods,
				Message: "Too many succeeded pods running after completion count reached"})
		}
		s.events = append(s.events, kit.Event{Type: v1.EventTypeNormal, Reason: ReasonCompleted, Message: "Job completed"})
	} else {
		s.events = append(s.events, kit.Event{Type: v1.EventTypeWarning, Reason: f.Reason, Message: f.Message})
	}
	return s
}

// statusChanged reports whether a status write is needed. Like upstream, a
// Job's start time alone is not worth a write; it goes with the next one.
func statusChanged(old, updated *batch.JobStatus) bool {
	withOldStart := *updated
	withOldStart.StartTime = old.StartTime
	return !apiequality.Semantic.DeepEqual(old, &withOldStart)
}

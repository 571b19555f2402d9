package job

import (
	"fmt"
	"sort"
	"strings"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// testNow is the fake "now" of the plan tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return testNow.Add(-d) }

// jobOpt changes a test Job.
type jobOpt func(*batch.Job)

// newTestJob builds a Job the way the apiserver would have defaulted it:
// completions and parallelism as given (nil completions for -1), backoffLimit
// 6, NonIndexed, not suspended, TerminatingOrFailed.
func newTestJob(completions, parallelism int32, opts ...jobOpt) *batch.Job {
	job := &batch.Job{
		TypeMeta: metav1.TypeMeta{Kind: "Job", APIVersion: "batch/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            "pi",
			Namespace:       "default",
			UID:             "job-uid",
			ResourceVersion: "10",
		},
		Spec: batch.JobSpec{
			Parallelism:          ptr.To(parallelism),
			BackoffLimit:         ptr.To[int32](6),
			CompletionMode:       ptr.To(batch.NonIndexedCompletion),
			Suspend:              ptr.To(false),
			PodReplacementPolicy: ptr.To(batch.TerminatingOrFailed),
			ManualSelector:       ptr.To(false),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				batch.ControllerUidLabel: "job-uid",
			}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					batch.ControllerUidLabel: "job-uid",
					batch.JobNameLabel:       "pi",
					"controller-uid":         "job-uid",
					"job-name":               "pi",
				}},
				Spec: v1.PodSpec{
					RestartPolicy: v1.RestartPolicyNever,
					Containers:    []v1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	if completions >= 0 {
		job.Spec.Completions = ptr.To(completions)
	}
	for _, o := range opts {
		o(job)
	}
	return job
}

func indexed(job *batch.Job)   { job.Spec.CompletionMode = ptr.To(batch.IndexedCompletion) }
func suspended(job *batch.Job) { job.Spec.Suspend = ptr.To(true) }
func onFailure(job *batch.Job) { job.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyOnFailure }
func replaceFailedOnly(job *batch.Job) {
	job.Spec.PodReplacementPolicy = ptr.To(batch.Failed)
}
func backoffLimit(n int32) jobOpt { return func(j *batch.Job) { j.Spec.BackoffLimit = ptr.To(n) } }
func perIndexLimit(n int32) jobOpt {
	return func(j *batch.Job) {
		j.Spec.BackoffLimitPerIndex = ptr.To(n)
		j.Spec.BackoffLimit = ptr.To[int32](2147483647)
	}
}
func maxFailedIndexes(n int32) jobOpt {
	return func(j *batch.Job) { j.Spec.MaxFailedIndexes = ptr.To(n) }
}
func deadline(seconds int64) jobOpt {
	return func(j *batch.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To(seconds) }
}
func startedAt(t time.Time) jobOpt {
	return func(j *batch.Job) { j.Status.StartTime = ptr.To(metav1.NewTime(t)) }
}
func withStatus(f func(*batch.JobStatus)) jobOpt {
	return func(j *batch.Job) { f(&j.Status) }
}
func failurePolicy(rules ...batch.PodFailurePolicyRule) jobOpt {
	return func(j *batch.Job) {
		j.Spec.PodFailurePolicy = &batch.PodFailurePolicy{Rules: rules}
		j.Spec.PodReplacementPolicy = ptr.To(batch.Failed)
	}
}
func successPolicy(rules ...batch.SuccessPolicyRule) jobOpt {
	return func(j *batch.Job) { j.Spec.SuccessPolicy = &batch.SuccessPolicy{Rules: rules} }
}
func withCondition(t batch.JobConditionType, reason, message string) jobOpt {
	return func(j *batch.Job) {
		j.Status.Conditions = append(j.Status.Conditions, *newCondition(t, v1.ConditionTrue, reason, message, ago(time.Minute)))
	}
}

// podOpt changes a test pod.
type podOpt func(*v1.Pod)

// newTestPod builds a pod of the Job with the tracking finalizer, in the
// given phase. Finished pods get a container that exited at finished.
func newTestPod(job *batch.Job, name string, phase v1.PodPhase, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			Namespace:         job.Namespace,
			UID:               types.UID(name),
			Labels:            map[string]string{batch.ControllerUidLabel: string(job.UID)},
			Finalizers:        []string{batch.JobTrackingFinalizer},
			CreationTimestamp: metav1.NewTime(ago(time.Hour)),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec:   v1.PodSpec{NodeName: "node-1"},
		Status: v1.PodStatus{Phase: phase},
	}
	if phase == v1.PodSucceeded || phase == v1.PodFailed {
		code := int32(0)
		if phase == v1.PodFailed {
			code = 1
		}
		p.Status.ContainerStatuses = []v1.ContainerStatus{{
			Name: "main",
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode:   code,
				FinishedAt: metav1.NewTime(ago(time.Hour)),
			}},
		}}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func atIndex(ix int) podOpt {
	return func(p *v1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[batch.JobCompletionIndexAnnotation] = fmt.Sprint(ix)
		p.Labels[batch.JobCompletionIndexAnnotation] = fmt.Sprint(ix)
	}
}
func annotated(k, v string) podOpt {
	return func(p *v1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
}
func noFinalizer(p *v1.Pod) { p.Finalizers = nil }
func ready(p *v1.Pod) {
	p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{
		Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(ago(30 * time.Minute)),
	})
}
func beingDeleted(p *v1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(ago(time.Hour))) }
func unscheduled(p *v1.Pod)  { p.Spec.NodeName = "" }
func finishedAt(t time.Time) podOpt {
	return func(p *v1.Pod) {
		for i := range p.Status.ContainerStatuses {
			if term := p.Status.ContainerStatuses[i].State.Terminated; term != nil {
				term.FinishedAt = metav1.NewTime(t)
			}
		}
	}
}
func exitCode(code int32) podOpt {
	return func(p *v1.Pod) {
		p.Status.ContainerStatuses[0].State.Terminated.ExitCode = code
	}
}
func restartCount(n int32) podOpt {
	return func(p *v1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, v1.ContainerStatus{Name: "main", RestartCount: n})
	}
}
func podCondition(t v1.PodConditionType) podOpt {
	return func(p *v1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: t, Status: v1.ConditionTrue})
	}
}
func createdAt(t time.Time) podOpt {
	return func(p *v1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}

// statusView is a status reduced to what the plan tests compare.
type statusView struct {
	Active, Ready, Terminating int32
	Succeeded, Failed          int32
	UncountedSucceeded         string
	UncountedFailed            string
	CompletedIndexes           string
	FailedIndexes              string
	Conditions                 string
	Started, Completed         bool
}

func viewStatus(st batch.JobStatus) statusView {
	v := statusView{
		Active:           st.Active,
		Ready:            ptr.Deref(st.Ready, -1),
		Terminating:      ptr.Deref(st.Terminating, -1),
		Succeeded:        st.Succeeded,
		Failed:           st.Failed,
		CompletedIndexes: st.CompletedIndexes,
		FailedIndexes:    ptr.Deref(st.FailedIndexes, "<nil>"),
		Started:          st.StartTime != nil,
		Completed:        st.CompletionTime != nil,
	}
	if u := st.UncountedTerminatedPods; u != nil {
		v.UncountedSucceeded = joinUIDs(u.Succeeded)
		v.UncountedFailed = joinUIDs(u.Failed)
	}
	var conds []string
	for _, c := range st.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	v.Conditions = strings.Join(conds, " ")
	return v
}

func joinUIDs(uids []types.UID) string {
	s := make([]string, len(uids))
	for i, u := range uids {
		s[i] = string(u)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// planView is the result of a whole sync in which every write succeeded.
type planView struct {
	// Creates lists the created pods: their completion index, or "pod" for
	// a NonIndexed Job.
	Creates string
	// Deletes lists deleted pods, "!" marking those that lose their
	// finalizer first.
	Deletes        string
	Interim        statusView
	DropFinalizers string
	Final          statusView
	Finished       bool
	Events         string
	Requeue        time.Duration
}

func runPlan(in *observed) (planView, *decision) {
	d := decide(in)
	t := d.track(outcome{})
	dropped := sets.New[types.UID]()
	for _, p := range t.dropFinalizers {
		dropped.Insert(p.UID)
	}
	s := t.settle(dropped)
	var v planView
	var creates []string
	for _, p := range d.creates {
		if ix := completionIndexOf(p); ix != noIndex {
			creates = append(creates, fmt.Sprint(ix))
		} else {
			creates = append(creates, "pod")
		}
	}
	v.Creates = strings.Join(creates, ",")
	var deletes []string
	for _, del := range d.deletes {
		name := del.pod.Name
		if del.dropFinalizer {
			name = "!" + name
		}
		deletes = append(deletes, name)
	}
	v.Deletes = strings.Join(deletes, ",")
	v.Interim = viewStatus(t.status)
	var drops []string
	for _, p := range t.dropFinalizers {
		drops = append(drops, p.Name)
	}
	sort.Strings(drops)
	v.DropFinalizers = strings.Join(drops, ",")
	v.Final = viewStatus(s.status)
	v.Finished = s.finished
	var events []string
	for _, e := range append(d.events, s.events...) {
		events = append(events, e.Reason)
	}
	v.Events = strings.Join(events, ",")
	v.Requeue = d.requeue
	return v, d
}

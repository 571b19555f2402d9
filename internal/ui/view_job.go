package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/controllers/job"
)

// JobsView lists the Jobs and draws the selected one.
type JobsView struct {
	Items    []JobSummary `json:"items"`
	Selected *JobDetail   `json:"selected"`
}

// JobSummary is one line of the list.
type JobSummary struct {
	Ref         Ref       `json:"ref"`
	Owner       *Ref      `json:"owner,omitempty"`
	Status      string    `json:"status"`
	Completions string    `json:"completions"`
	Active      int32     `json:"active"`
	Succeeded   int32     `json:"succeeded"`
	Failed      int32     `json:"failed"`
	Created     time.Time `json:"created"`
}

// JobDetail is one Job: its spec's limits, its pods over time with their
// exit codes, the completions and failures so far, the back-off before the
// next retry, the deadline and how it finished.
type JobDetail struct {
	Ref                   Ref    `json:"ref"`
	Owner                 *Ref   `json:"owner,omitempty"`
	Status                string `json:"status"`
	Completions           *int32 `json:"completions"`
	Parallelism           int32  `json:"parallelism"`
	CompletionMode        string `json:"completionMode"`
	BackoffLimit          int32  `json:"backoffLimit"`
	BackoffLimitPerIndex  *int32 `json:"backoffLimitPerIndex,omitempty"`
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	RestartPolicy         string `json:"restartPolicy"`
	Suspended             bool   `json:"suspended"`

	Active      int32      `json:"active"`
	Ready       int32      `json:"ready"`
	Succeeded   int32      `json:"succeeded"`
	Failed      int32      `json:"failed"`
	Terminating int32      `json:"terminating"`
	Created     time.Time  `json:"created"`
	StartTime   *time.Time `json:"startTime,omitempty"`
	EndTime     *time.Time `json:"endTime,omitempty"`
	// Deadline is startTime + activeDeadlineSeconds.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Outcome is the Complete or Failed condition, once there is one.
	Outcome    *Condition  `json:"outcome,omitempty"`
	Conditions []Condition `json:"conditions"`
	Pods       []JobPod    `json:"pods"`
	// Series is the cumulative count of pods succeeded and failed at each
	// moment a pod finished, from the pods still there.
	Series []JobPoint `json:"series"`
	// Backoff is set while the Job waits before replacing a failed pod.
	Backoff *Backoff `json:"backoff,omitempty"`
	// Indexes is set for Indexed Jobs: each completion index's state.
	Indexes []IndexState `json:"indexes,omitempty"`
	Events  []Event      `json:"events"`
}

// Condition is a status condition.
type Condition struct {
	Type    string    `json:"type"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`
}

// JobPod is one of a Job's pods.
type JobPod struct {
	PodBrief
	Index    *int       `json:"index,omitempty"`
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// ExitCode is the main container's exit code once it has exited;
	// LastExitCode the one before its latest restart (restartPolicy
	// OnFailure restarts containers in the same pod).
	ExitCode     *int32 `json:"exitCode,omitempty"`
	LastExitCode *int32 `json:"lastExitCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// JobPoint is one step of the completions and failures curve.
type JobPoint struct {
	Time      time.Time `json:"time"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
}

// Backoff is the wait before the next retry.
type Backoff struct {
	Failures    int32     `json:"failures"`
	Delay       float64   `json:"delaySeconds"`
	LastFailure time.Time `json:"lastFailure"`
	Next        time.Time `json:"next"`
}

// IndexState is one completion index of an Indexed Job.
type IndexState struct {
	Index int    `json:"index"`
	State string `json:"state"` // succeeded, failed, running, pending
}

// maxIndexes bounds the index strip of a huge Indexed Job.
const maxIndexes = 10000

func jobsView(s *snapshot, namespace, name string) JobsView {
	jobs := slices.Clone(s.Jobs)
	slices.SortFunc(jobs, func(a, b *batchv1.Job) int {
		return cmp.Or(b.CreationTimestamp.Compare(a.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	v := JobsView{Items: []JobSummary{}}
	var selected *batchv1.Job
	for _, j := range jobs {
		if j.Namespace == namespace && j.Name == name {
			selected = j
		}
		if namespace != "" && j.Namespace != namespace && name == "" {
			continue
		}
		sum := JobSummary{
			Ref: Ref{Kind: "Job", Namespace: j.Namespace, Name: j.Name}, Status: jobStatus(j),
			Active: j.Status.Active, Succeeded: j.Status.Succeeded, Failed: j.Status.Failed, Created: j.CreationTimestamp.Time,
		}
		if j.Spec.Completions != nil {
			sum.Completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
		} else {
			sum.Completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, ptrOr(j.Spec.Parallelism, 1))
		}
		if ref := metaControllerOf(j.OwnerReferences); ref != nil {
			sum.Owner = &Ref{Kind: ref.Kind, Namespace: j.Namespace, Name: ref.Name}
		}
		v.Items = append(v.Items, sum)
	}
	if selected == nil && name == "" && len(jobs) > 0 && len(v.Items) > 0 {
		for _, j := range jobs {
			if j.Namespace == v.Items[0].Ref.Namespace && j.Name == v.Items[0].Ref.Name {
				selected = j
			}
		}
	}
	if selected != nil {
		d := jobDetail(s, selected)
		v.Selected = &d
	}
	return v
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// jobStatus is what kubectl's STATUS column says.
func jobStatus(j *batchv1.Job) string {
	if t, _, ok := jobOutcome(j); ok {
		return string(t)
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobFailureTarget:
			return "FailureTarget"
		case batchv1.JobSuccessCriteriaMet:
			return "SuccessCriteriaMet"
		case batchv1.JobSuspended:
			return "Suspended"
		}
	}
	return "Running"
}

// jobSpec is a Job's detail from its spec and status alone.
func jobSpec(j *batchv1.Job) JobDetail {
	d := JobDetail{
		Ref:                   Ref{Kind: "Job", Namespace: j.Namespace, Name: j.Name},
		Status:                jobStatus(j),
		Completions:           j.Spec.Completions,
		Parallelism:           ptrOr(j.Spec.Parallelism, 1),
		CompletionMode:        string(ptrOr(j.Spec.CompletionMode, batchv1.NonIndexedCompletion)),
		BackoffLimit:          ptrOr(j.Spec.BackoffLimit, 6),
		BackoffLimitPerIndex:  j.Spec.BackoffLimitPerIndex,
		ActiveDeadlineSeconds: j.Spec.ActiveDeadlineSeconds,
		RestartPolicy:         string(j.Spec.Template.Spec.RestartPolicy),
		Suspended:             ptrOr(j.Spec.Suspend, false),
		Active:                j.Status.Active,
		Ready:                 ptrOr(j.Status.Ready, 0),
		Succeeded:             j.Status.Succeeded,
		Failed:                j.Status.Failed,
		Terminating:           ptrOr(j.Status.Terminating, 0),
		Created:               j.CreationTimestamp.Time,
		StartTime:             timeOf(j.Status.StartTime),
		EndTime:               timeOf(j.Status.CompletionTime),
		Conditions:            []Condition{},
		Pods:                  []JobPod{},
		Series:                []JobPoint{},
	}
	if ref := metaControllerOf(j.OwnerReferences); ref != nil {
		d.Owner = &Ref{Kind: ref.Kind, Namespace: j.Namespace, Name: ref.Name}
	}
	if d.StartTime != nil && j.Spec.ActiveDeadlineSeconds != nil {
		dl := d.StartTime.Add(time.Duration(*j.Spec.ActiveDeadlineSeconds) * time.Second)
		d.Deadline = &dl
	}
	for _, c := range j.Status.Conditions {
		cond := Condition{Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message, Time: c.LastTransitionTime.Time}
		d.Conditions = append(d.Conditions, cond)
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			o := cond
			d.Outcome = &o
			if d.EndTime == nil {
				t := c.LastTransitionTime.Time
				d.EndTime = &t
			}
		}
	}
	return d
}

// jobDetail is the selected Job: its pods, their finishes over time, its
// back-off, its indexes, its events.
func jobDetail(s *snapshot, j *batchv1.Job) JobDetail {
	d := jobSpec(j)
	var pods []*corev1.Pod
	for _, p := range s.Pods {
		if p.Namespace == j.Namespace && metaControllerOf(p.OwnerReferences) != nil && metaControllerOf(p.OwnerReferences).UID == j.UID {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	finishes, lastSuccess := d.addPods(pods)
	d.Backoff = backoffOf(j, d, finishes, lastSuccess)
	d.Indexes = indexStates(j, d)
	d.Events = eventsAbout(s.Events, "Job", j.Namespace, j.Name, 50)
	return d
}

// finish is a pod's end: when, and whether it succeeded.
type finish struct {
	t  time.Time
	ok bool
}

// addPods fills d's pods and its series of finishes; it returns the
// finishes in time order and the last success.
func (d *JobDetail) addPods(pods []*corev1.Pod) (finishes []finish, lastSuccess time.Time) {
	for _, p := range pods {
		jp := jobPod(p)
		d.Pods = append(d.Pods, jp)
		if jp.Finished == nil {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			finishes = append(finishes, finish{*jp.Finished, true})
			if jp.Finished.After(lastSuccess) {
				lastSuccess = *jp.Finished
			}
		case corev1.PodFailed:
			finishes = append(finishes, finish{*jp.Finished, false})
		}
	}
	slices.SortStableFunc(finishes, func(a, b finish) int { return a.t.Compare(b.t) })
	var ok, failed int
	for _, f := range finishes {
		if f.ok {
			ok++
		} else {
			failed++
		}
		d.Series = append(d.Series, JobPoint{Time: f.t, Succeeded: ok, Failed: failed})
	}
	return finishes, lastSuccess
}

// backoffOf is the Job's back-off: failures since the last success, while
// nothing runs; nil when there is none.
func backoffOf(j *batchv1.Job, d JobDetail, finishes []finish, lastSuccess time.Time) *Backoff {
	if d.Outcome == nil && !d.Suspended && j.Status.Active == 0 {
		var b Backoff
		for _, f := range finishes {
			if !f.ok && f.t.After(lastSuccess) {
				b.Failures++
				b.LastFailure = f.t
			}
		}
		if b.Failures > 0 {
			delay := job.RetryDelay(j, b.Failures)
			b.Delay = delay.Seconds()
			b.Next = b.LastFailure.Add(delay)
			return &b
		}
	}
	return nil
}

// indexStates is the state of each index of an Indexed Job (up to
// maxIndexes), or nil for other Jobs.
func indexStates(j *batchv1.Job, d JobDetail) []IndexState {
	var out []IndexState
	if d.CompletionMode == string(batchv1.IndexedCompletion) && j.Spec.Completions != nil {
		n := min(int(*j.Spec.Completions), maxIndexes)
		states := make([]string, n)
		for i := range states {
			states[i] = "pending"
		}
		for _, jp := range d.Pods {
			if jp.Index != nil && *jp.Index < n && jp.Phase != string(corev1.PodSucceeded) && jp.Phase != string(corev1.PodFailed) {
				states[*jp.Index] = "running"
			}
		}
		markIndexes(states, ptrOr(j.Status.FailedIndexes, ""), "failed")
		markIndexes(states, j.Status.CompletedIndexes, "succeeded")
		for i, st := range states {
			out = append(out, IndexState{Index: i, State: st})
		}
	}
	return out
}

// markIndexes sets the state of every index in a status index list such
// as "1,3-5"; malformed pieces are skipped.
func markIndexes(states []string, list, state string) {
	for _, piece := range strings.Split(list, ",") {
		if piece == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(piece, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := max(a, 0); i <= b && i < len(states); i++ {
			states[i] = state
		}
	}
}

func jobPod(p *corev1.Pod) JobPod {
	jp := JobPod{PodBrief: podBrief(p), Created: p.CreationTimestamp.Time, Started: timeOf(p.Status.StartTime)}
	if v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]; ok {
		if i, err := strconv.Atoi(v); err == nil {
			jp.Index = &i
		}
	}
	if len(p.Status.ContainerStatuses) > 0 {
		cs := p.Status.ContainerStatuses[0]
		if t := cs.State.Terminated; t != nil {
			code := t.ExitCode
			jp.ExitCode = &code
			jp.Reason = t.Reason
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			code := t.ExitCode
			jp.LastExitCode = &code
		}
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		var latest time.Time
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.FinishedAt.After(latest) {
				latest = t.FinishedAt.Time
			}
		}
		if latest.IsZero() {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.LastTransitionTime.After(latest) {
					latest = c.LastTransitionTime.Time
				}
			}
		}
		if latest.IsZero() {
			latest = p.CreationTimestamp.Time
		}
		jp.Finished = &latest
		if jp.Reason == "" {
			jp.Reason = p.Status.Reason
		}
	}
	return jp
}

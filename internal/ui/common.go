package ui

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Ref names an object; the front end links it to its YAML.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Event is one Kubernetes Event as the views show it.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count"`
	Object  Ref       `json:"object"`
	Source  string    `json:"source,omitempty"`
}

// PodBrief is a pod as a cell or a row shows it.
type PodBrief struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Status is what kubectl's STATUS column would say.
	Status   string `json:"status"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	Node     string `json:"node,omitempty"`
	Owner    *Ref   `json:"owner,omitempty"`
}

func podBrief(p *corev1.Pod) PodBrief {
	b := PodBrief{Name: p.Name, Namespace: p.Namespace, Status: podStatus(p), Phase: string(p.Status.Phase), Ready: podReady(p), Node: p.Spec.NodeName}
	for _, cs := range p.Status.ContainerStatuses {
		b.Restarts += cs.RestartCount
	}
	if ref := metaControllerOf(p.OwnerReferences); ref != nil {
		b.Owner = &Ref{Kind: ref.Kind, Namespace: p.Namespace, Name: ref.Name}
	}
	return b
}

// podStatus follows kubectl's STATUS column: the pod's reason, else the
// first container's waiting or terminated reason, else the phase.
func podStatus(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	status := string(p.Status.Phase)
	if p.Status.Reason != "" {
		status = p.Status.Reason
	}
	for i := len(p.Status.InitContainerStatuses) - 1; i >= 0; i-- {
		cs := p.Status.InitContainerStatuses[i]
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" {
			return "Init:" + w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return "Init:" + cmp.Or(t.Reason, fmt.Sprintf("ExitCode:%d", t.ExitCode))
		}
	}
	running := false
	for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
		cs := p.Status.ContainerStatuses[i]
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			status = cs.State.Waiting.Reason
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			switch {
			case t.Reason != "":
				status = t.Reason
			case t.Signal != 0:
				status = fmt.Sprintf("Signal:%d", t.Signal)
			default:
				status = fmt.Sprintf("ExitCode:%d", t.ExitCode)
			}
		case cs.Ready && cs.State.Running != nil:
			running = true
		}
	}
	if running && status == string(corev1.PodRunning) {
		return "Running"
	}
	if status == "" {
		return "Pending"
	}
	return status
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func metaControllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

func ownedBy(obj metav1.Object, kind, name string) bool {
	ref := metaControllerOf(obj.GetOwnerReferences())
	return ref != nil && ref.Kind == kind && ref.Name == name
}

// jobFinished is true once the Job has a Complete or Failed condition.
func jobFinished(job *batchv1.Job) bool {
	_, _, ok := jobOutcome(job)
	return ok
}

func jobOutcome(job *batchv1.Job) (batchv1.JobConditionType, *batchv1.JobCondition, bool) {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, c, true
		}
	}
	return "", nil, false
}

// eventTime is when an event last happened.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventOf(e *corev1.Event) Event {
	ev := Event{
		Time: eventTime(e), Type: e.Type, Reason: e.Reason, Message: e.Message, Count: max(e.Count, 1),
		Object: Ref{Kind: e.InvolvedObject.Kind, Namespace: e.InvolvedObject.Namespace, Name: e.InvolvedObject.Name},
		Source: cmp.Or(e.Source.Component, e.ReportingController),
	}
	if e.Series != nil {
		ev.Count = max(e.Series.Count, 1)
	}
	return ev
}

// eventsAbout lists the events of one object, newest first, at most limit.
func eventsAbout(events []*corev1.Event, kind, namespace, name string, limit int) []Event {
	out := []Event{}
	for _, e := range events {
		o := e.InvolvedObject
		if o.Kind == kind && o.Namespace == namespace && o.Name == name {
			out = append(out, eventOf(e))
		}
	}
	sortEvents(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// sortEvents orders newest first; ties by object and reason, so a stream
// of equal snapshots stays equal.
func sortEvents(evs []Event) {
	slices.SortFunc(evs, func(a, b Event) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Object.Namespace, b.Object.Namespace), cmp.Compare(a.Object.Name, b.Object.Name),
			cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
}

func byNamespaceName[T metav1.Object](items []T) {
	slices.SortFunc(items, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}

func timePtr(t metav1.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := t.Time
	return &v
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	return timePtr(*t)
}

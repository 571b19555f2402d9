package job

import (
	"math"
	"slices"
	"strconv"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/internal/controllers/kit"
)

// noIndex marks a pod without a usable completion index.
const noIndex = -1

// completionIndexEnv is the variable through which an Indexed Job's container
// learns its index.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

func hasTrackingFinalizer(p *v1.Pod) bool {
	return slices.Contains(p.Finalizers, batch.JobTrackingFinalizer)
}

func isTerminalPhase(phase v1.PodPhase) bool {
	return phase == v1.PodSucceeded || phase == v1.PodFailed
}

// isActive is a pod that is neither finished nor being deleted: it still
// counts toward parallelism.
func isActive(p *v1.Pod) bool {
	return !isTerminalPhase(p.Status.Phase) && p.DeletionTimestamp == nil
}

// isTerminating is a pod being deleted that has not reached a terminal phase.
func isTerminating(p *v1.Pod) bool {
	return !isTerminalPhase(p.Status.Phase) && p.DeletionTimestamp != nil
}

// completionIndexOf reads the batch.kubernetes.io/job-completion-index
// annotation; anything but a non-negative integer is noIndex.
func completionIndexOf(p *v1.Pod) int {
	text, ok := p.Annotations[batch.JobCompletionIndexAnnotation]
	if !ok {
		return noIndex
	}
	ix, err := strconv.Atoi(text)
	if err != nil || ix < 0 {
		return noIndex
	}
	return ix
}

// annotationCount reads a counter annotation such as
// batch.kubernetes.io/job-index-failure-count. A missing, malformed or out of
// range value counts as zero: pods' annotations are user-writable.
func annotationCount(p *v1.Pod, key string) int32 {
	text, ok := p.Annotations[key]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0
	}
	return int32(n)
}

// indexFailures is the number of counted failures in the pod's index before
// this pod.
func indexFailures(p *v1.Pod) int32 {
	return annotationCount(p, batch.JobIndexFailureCountAnnotation)
}

// indexAllFailures adds the failures the pod failure policy ignored.
func indexAllFailures(p *v1.Pod) int32 {
	return indexFailures(p) + annotationCount(p, batch.JobIndexIgnoredFailureCountAnnotation)
}

// finishTime estimates when a finished pod stopped: the last container exit
// when every container has one, else the moment the pod stopped being ready,
// else the moment it was deleted, else its creation.
func finishTime(p *v1.Pod) time.Time {
	if t, ok := containersFinishedAt(p); ok {
		return t
	}
	if c := kit.ReadyCondition(p); c != nil && c.Status == v1.ConditionFalse && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	if p.DeletionTimestamp != nil {
		grace := time.Duration(0)
		if p.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
		}
		return p.DeletionTimestamp.Add(-grace)
	}
	return p.CreationTimestamp.Time
}

// containersFinishedAt is the latest exit among the regular containers and
// the sidecars (restartable init containers); it is unknown while any of them
// has no exit time.
func containersFinishedAt(p *v1.Pod) (time.Time, bool) {
	var latest time.Time
	found := false
	consider := func(s v1.ContainerStatus) bool {
		t := s.State.Terminated
		if t == nil || t.FinishedAt.IsZero() {
			return false
		}
		if !found || t.FinishedAt.After(latest) {
			latest = t.FinishedAt.Time
		}
		found = true
		return true
	}
	for _, s := range p.Status.ContainerStatuses {
		if !consider(s) {
			return time.Time{}, false
		}
	}
	sidecars := sidecarNames(p)
	for _, s := range p.Status.InitContainerStatuses {
		if _, ok := sidecars[s.Name]; ok && !consider(s) {
			return time.Time{}, false
		}
	}
	return latest, found
}

func sidecarNames(p *v1.Pod) map[string]struct{} {
	var names map[string]struct{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			if names == nil {
				names = map[string]struct{}{}
			}
			names[c.Name] = struct{}{}
		}
	}
	return names
}

// restarts is the total container restart count of a pod that is still
// pending or running: with restartPolicy OnFailure, each restart is a retry.
func restarts(p *v1.Pod) int32 {
	if p.Status.Phase != v1.PodRunning && p.Status.Phase != v1.PodPending {
		return 0
	}
	var n int32
	for _, s := range p.Status.InitContainerStatuses {
		n += s.RestartCount
	}
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// phaseRank orders phases from least to most advanced for choosing which
// pod to delete first.
func phaseRank(phase v1.PodPhase) int {
	switch phase {
	case v1.PodUnknown:
		return 1
	case v1.PodRunning:
		return 2
	default:
		return 0
	}
}

// highestRestarts returns the largest restart count of the regular
// containers and of the sidecars.
func highestRestarts(p *v1.Pod) (regular, sidecar int32) {
	for _, s := range p.Status.ContainerStatuses {
		regular = max(regular, s.RestartCount)
	}
	sidecars := sidecarNames(p)
	for _, s := range p.Status.InitContainerStatuses {
		if _, ok := sidecars[s.Name]; ok {
			sidecar = max(sidecar, s.RestartCount)
		}
	}
	return regular, sidecar
}

// laterOrUnset reports whether a is later than b, an unset time counting as
// the latest of all.
func laterOrUnset(a, b metav1.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero()
	}
	return a.After(b.Time)
}

// deleteFirst reports whether pod a is a better candidate for deletion than
// pod b: the least progress is lost by deleting pods that are unscheduled,
// pending, not ready, ready for less time, crash-looping or young, in that
// order of precedence.
func deleteFirst(a, b *v1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if ra, rb := phaseRank(a.Status.Phase), phaseRank(b.Status.Phase); ra != rb {
		return ra < rb
	}
	readyA, readyB := kit.ReadyCondition(a), kit.ReadyCondition(b)
	okA := readyA != nil && readyA.Status == v1.ConditionTrue
	okB := readyB != nil && readyB.Status == v1.ConditionTrue
	if okA != okB {
		return !okA
	}
	if okA && !readyA.LastTransitionTime.Equal(&readyB.LastTransitionTime) {
		return laterOrUnset(readyA.LastTransitionTime, readyB.LastTransitionTime)
	}
	regA, sideA := highestRestarts(a)
	regB, sideB := highestRestarts(b)
	if regA != regB {
		return regA > regB
	}
	if sideA != sideB {
		return sideA > sideB
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return laterOrUnset(a.CreationTimestamp, b.CreationTimestamp)
	}
	return false
}

// sortForDeletion orders pods best deletion candidate first, stably so that
// equal pods keep the informer's order.
func sortForDeletion(pods []*v1.Pod) {
	slices.SortStableFunc(pods, func(a, b *v1.Pod) int {
		switch {
		case deleteFirst(a, b):
			return -1
		case deleteFirst(b, a):
			return 1
		}
		return 0
	})
}

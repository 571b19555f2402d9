package job

import (
	"slices"
	"sort"
	"strconv"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// noIndex marks a pod without a usable completion index.
const noIndex = -1

// completionIndexEnv tells an Indexed Job's container its index.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

func hasTrackingFinalizer(p *v1.Pod) bool {
	return slices.Contains(p.Finalizers, batch.JobTrackingFinalizer)
}

// completionIndexOf reads the batch.kubernetes.io/job-completion-index
// annotation; anything but a non-negative integer is noIndex.
func completionIndexOf(p *v1.Pod) int {
	// Only a present annotation is parsed: parsing "" allocates its error.
	if text, ok := p.Annotations[batch.JobCompletionIndexAnnotation]; ok {
		if ix, err := strconv.Atoi(text); err == nil && ix >= 0 {
			return ix
		}
	}
	return noIndex
}

// annotationCount reads a counter annotation such as
// batch.kubernetes.io/job-index-failure-count. A missing, malformed or out of
// range value counts as zero: pods' annotations are user-writable.
func annotationCount(p *v1.Pod, key string) int32 {
	// Only a present annotation is parsed: parsing "" allocates its error.
	if text, ok := p.Annotations[key]; ok {
		if n, err := strconv.ParseInt(text, 10, 32); err == nil && n >= 0 {
			return int32(n)
		}
	}
	return 0
}

// indexFailures is the number of counted failures in the pod's index before it.
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
		return p.DeletionTimestamp.Add(-time.Duration(ptr.Deref(p.DeletionGracePeriodSeconds, 0)) * time.Second)
	}
	return p.CreationTimestamp.Time
}

// containersFinishedAt is the latest exit among the regular containers and
// the sidecars (restartable init containers); it is unknown while any of them
// has no exit time.
func containersFinishedAt(p *v1.Pod) (time.Time, bool) {
	var latest time.Time
	exited := func(s v1.ContainerStatus) bool {
		t := s.State.Terminated
		if t == nil || t.FinishedAt.IsZero() {
			return false
		}
		if t.FinishedAt.After(latest) {
			latest = t.FinishedAt.Time
		}
		return true
	}
	for _, s := range p.Status.ContainerStatuses {
		if !exited(s) {
			return time.Time{}, false
		}
	}
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		if s, ok := podutil.GetContainerStatus(p.Status.InitContainerStatuses, c.Name); ok && podutil.IsRestartableInitContainer(c) && !exited(s) {
			return time.Time{}, false
		}
	}
	return latest, !latest.IsZero()
}

// restarts is the total container restart count of a pod that is still
// pending or running: with restartPolicy OnFailure, each restart is a retry.
func restarts(p *v1.Pod) int32 {
	if p.Status.Phase != v1.PodRunning && p.Status.Phase != v1.PodPending {
		return 0
	}
	var n int32
	for _, list := range [][]v1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range list {
			n += s.RestartCount
		}
	}
	return n
}

// sortForDeletion orders pods best deletion candidate first, by upstream's
// rule for active pods (controller.ActivePods: unscheduled, pending, not
// ready, ready for less time, crash-looping, young), stably so that equal
// pods keep the informer's order.
func sortForDeletion(pods []*v1.Pod) {
	sort.Stable(controller.ActivePods(pods))
}

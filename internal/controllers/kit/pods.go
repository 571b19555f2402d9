package kit

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// ReadyCondition returns the pod's Ready condition, or nil.
func ReadyCondition(pod *v1.Pod) *v1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == v1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// IsReady reports the pod's Ready condition is True.
func IsReady(pod *v1.Pod) bool {
	c := ReadyCondition(pod)
	return c != nil && c.Status == v1.ConditionTrue
}

// AvailableIn says how long until the pod is available, that is, Ready for
// minReadySeconds: 0 means available now; a negative value means it is not
// Ready, so waiting alone will not make it available. A pod Ready since an
// unknown time is never available with minReadySeconds, and gets
// minReadySeconds, so that whoever asks looks again.
func AvailableIn(pod *v1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	c := ReadyCondition(pod)
	if c == nil || c.Status != v1.ConditionTrue {
		return -1
	}
	if minReadySeconds == 0 {
		return 0
	}
	minReady := time.Duration(minReadySeconds) * time.Second
	if c.LastTransitionTime.IsZero() {
		return minReady
	}
	return max(0, c.LastTransitionTime.Add(minReady).Sub(now))
}

// IsAvailable reports the pod has been Ready for minReadySeconds at now.
func IsAvailable(pod *v1.Pod, minReadySeconds int32, now time.Time) bool {
	return AvailableIn(pod, minReadySeconds, now) == 0
}

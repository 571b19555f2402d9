package kit

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/pkg/controller"
)

// PodFromTemplate is the pod an owner of kind kind creates from template:
// pkg/controller's GetPodFromTemplate (copies of the template's labels and
// annotations, never nil, for the caller to add to, its finalizers and spec,
// upstream's generateName, a controller reference to the owner) in the
// owner's namespace.
func PodFromTemplate(template *v1.PodTemplateSpec, owner Owner, kind schema.GroupVersionKind) *v1.Pod {
	// It fails only for an owner without ObjectMeta, which an Owner has.
	pod, _ := controller.GetPodFromTemplate(template, owner, metav1.NewControllerRef(owner, kind))
	pod.Namespace = owner.GetNamespace()
	return pod
}

// ReadyCondition returns the pod's Ready condition, or nil.
func ReadyCondition(pod *v1.Pod) *v1.PodCondition { return podutil.GetPodReadyCondition(pod.Status) }

// IsReady reports the pod's Ready condition is True.
var IsReady = podutil.IsPodReady

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

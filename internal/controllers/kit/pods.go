package kit

import (
	"maps"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
)

// PodFromTemplate is the pod an owner creates from template, as upstream's
// controllers build it: copies of the template's labels, annotations (both
// never nil, for the caller to add to), finalizers and spec, in the owner's
// namespace, with GenerateNamePrefix of the owner's name and a controller
// reference to the owner of kind kind.
func PodFromTemplate(template *v1.PodTemplateSpec, owner metav1.Object, kind schema.GroupVersionKind) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       owner.GetNamespace(),
			GenerateName:    GenerateNamePrefix(owner.GetName()),
			Labels:          maps.Clone(template.Labels),
			Annotations:     maps.Clone(template.Annotations),
			Finalizers:      slices.Clone(template.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, kind)},
		},
		Spec: *template.Spec.DeepCopy(),
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	return pod
}

// GenerateNamePrefix is the generateName of an owner's pods: the owner's
// name and a dash, unless the pair fails upstream's pod-name check for
// prefixes (then the bare name), as upstream's controllers name them. The
// apiserver keeps at most 58 characters of it.
func GenerateNamePrefix(name string) string {
	prefix := name + "-"
	if len(validation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
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

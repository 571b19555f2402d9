package statefulset

import (
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

var (
	// setKind and podKind are the kinds written into owner references.
	setKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	podKind = v1.SchemeGroupVersion.WithKind("Pod")
)

// splitPodName reads a StatefulSet pod's name as "<parent>-<ordinal>", where
// the ordinal is the run of decimal digits after the last dash. A name without
// such a suffix has no parent and ordinal -1; a suffix too large for an int32
// keeps its parent but has ordinal -1, which makes the pod ignored rather than
// managed. (By hand rather than by a regular expression: a plan calls it
// several times per pod, and a regexp match costs a dozen allocations.)
func splitPodName(name string) (parent string, ordinal int) {
	dash := strings.LastIndexByte(name, '-')
	digits := name[dash+1:]
	if dash < 0 || digits == "" || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", -1
	}
	n, err := strconv.ParseInt(digits, 10, 32)
	if err != nil {
		return name[:dash], -1
	}
	return name[:dash], int(n)
}

// ordinalOf is the ordinal encoded in pod's name, or -1.
func ordinalOf(pod *v1.Pod) int {
	_, ord := splitPodName(pod.Name)
	return ord
}

// firstOrdinal is spec.ordinals.start, the ordinal of the set's first pod.
func firstOrdinal(set *appsv1.StatefulSet) int {
	return int(ptr.Deref(set.Spec.Ordinals, appsv1.StatefulSetOrdinals{}).Start)
}

// replicaCount is spec.replicas; the apiserver defaults it to 1.
func replicaCount(set *appsv1.StatefulSet) int { return int(ptr.Deref(set.Spec.Replicas, 1)) }

// inOrdinalRange reports whether pod's ordinal is one the set wants.
func inOrdinalRange(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	ord, start := ordinalOf(pod), firstOrdinal(set)
	return ord >= start && ord < start+replicaCount(set)
}

func podNameFor(set *appsv1.StatefulSet, ordinal int) string {
	return set.Name + "-" + strconv.Itoa(ordinal)
}

// claimNameFor is the name of the claim that template gives the pod with the
// given ordinal: <template>-<set>-<ordinal>.
func claimNameFor(set *appsv1.StatefulSet, template string, ordinal int) string {
	return template + "-" + set.Name + "-" + strconv.Itoa(ordinal)
}

// matchesSet is the rule by which a pod is the set's: the set's selector
// selects it, and its name is <set>-<ordinal>. Pods whose names do not match
// are released even when the selector matches them.
func matchesSet(set *appsv1.StatefulSet, selector labels.Selector) func(*v1.Pod) bool {
	return func(pod *v1.Pod) bool {
		parent, _ := splitPodName(pod.Name)
		return selector.Matches(labels.Set(pod.Labels)) && parent == set.Name
	}
}

// hasIdentity reports whether pod carries the network identity of its
// ordinal: its name, namespace and pod-name label.
func hasIdentity(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	ord := ordinalOf(pod) // the name is <set>-<ordinal>, without leading zeros
	return ord >= 0 && pod.Name == podNameFor(set, ord) && pod.Namespace == set.Namespace &&
		pod.Labels[appsv1.StatefulSetPodNameLabel] == pod.Name
}

// hasStorage reports whether every volumeClaimTemplate is mounted in pod as
// the claim of pod's ordinal.
func hasStorage(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	ord := ordinalOf(pod)
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		i := slices.IndexFunc(pod.Spec.Volumes, func(vol v1.Volume) bool { return vol.Name == tmpl.Name })
		if i < 0 || pod.Spec.Volumes[i].PersistentVolumeClaim == nil ||
			pod.Spec.Volumes[i].PersistentVolumeClaim.ClaimName != claimNameFor(set, tmpl.Name, ord) {
			return false
		}
	}
	return true
}

// setIdentity gives pod the name, namespace and identity labels of its ordinal
// (hostname and subdomain are immutable on a pod: only newPod sets them).
func setIdentity(set *appsv1.StatefulSet, pod *v1.Pod) {
	ord := ordinalOf(pod)
	pod.Name = podNameFor(set, ord)
	pod.Namespace = set.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = pod.Name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ord)
}

// setStorage mounts the claims of pod's ordinal under the template names,
// replacing any volume of the same name, and keeps the pod's other volumes.
func setStorage(set *appsv1.StatefulSet, pod *v1.Pod) {
	ord, n := ordinalOf(pod), len(set.Spec.VolumeClaimTemplates)
	volumes := make([]v1.Volume, 0, len(pod.Spec.Volumes)+n)
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		volumes = append(volumes, v1.Volume{
			Name: tmpl.Name,
			VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{
				ClaimName: claimNameFor(set, tmpl.Name, ord),
			}},
		})
	}
	for _, vol := range pod.Spec.Volumes {
		if !slices.ContainsFunc(volumes[:n], func(v v1.Volume) bool { return v.Name == vol.Name }) {
			volumes = append(volumes, vol)
		}
	}
	pod.Spec.Volumes = volumes
}

// claimsFor returns the claims set's templates give pod, in template order,
// named for its ordinal, in the set's namespace, with the selector's labels.
func claimsFor(set *appsv1.StatefulSet, pod *v1.Pod) []*v1.PersistentVolumeClaim {
	ord := ordinalOf(pod)
	claims := make([]*v1.PersistentVolumeClaim, 0, len(set.Spec.VolumeClaimTemplates))
	for i := range set.Spec.VolumeClaimTemplates {
		claim := set.Spec.VolumeClaimTemplates[i].DeepCopy()
		claim.Name = claimNameFor(set, set.Spec.VolumeClaimTemplates[i].Name, ord)
		claim.Namespace = set.Namespace
		if set.Spec.Selector != nil && len(set.Spec.Selector.MatchLabels) > 0 {
			claim.Labels = labels.Merge(claim.Labels, set.Spec.Selector.MatchLabels)
		}
		claims = append(claims, claim)
	}
	return claims
}

// newPod builds the pod for ordinal from source's template (the set as of the
// revision the pod is created at) and labels it with revision.
func newPod(source *appsv1.StatefulSet, ordinal int, revision string) *v1.Pod {
	pod := kit.PodFromTemplate(&source.Spec.Template, source, setKind)
	pod.Name = podNameFor(source, ordinal)
	setIdentity(source, pod)
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = source.Spec.ServiceName
	setStorage(source, pod)
	pod.Labels[appsv1.StatefulSetRevisionLabel] = revision
	return pod
}

func revisionOf(pod *v1.Pod) string {
	return pod.Labels[appsv1.StatefulSetRevisionLabel]
}

// podExists tells a pod read from the apiserver, which always has a phase,
// from a pod the plan has only built.
func podExists(pod *v1.Pod) bool { return pod.Status.Phase != "" }

func isTerminating(pod *v1.Pod) bool { return pod.DeletionTimestamp != nil }

// isRunningAndReady is the OrderedReady gate.
func isRunningAndReady(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodRunning && kit.IsReady(pod)
}

// isUnavailable counts against maxUnavailable: not available, or going away.
func isUnavailable(pod *v1.Pod, minReadySeconds int32, now time.Time) bool {
	return isTerminating(pod) || !kit.IsAvailable(pod, minReadySeconds, now)
}

package statefulset

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// persistentVolumeClaimRetentionPolicy works through owner references, so
// that the garbage collector, not this controller, deletes claims:
//
//	whenDeleted  whenScaled  claim of a pod in range   claim of a scaled-down pod
//	Retain       Retain      no reference              no reference
//	Delete       Retain      controller ref to set     controller ref to set
//	Retain       Delete      no reference              controller ref to pod
//	Delete       Delete      controller ref to set     controller ref to pod
//
// A claim is left alone when a reference names the set or pod but with
// another UID (it belonged to an earlier incarnation), and the set's and
// pod's references are removed when some other controller owns the claim.

// claimDeletion reads set's retention policy: whether claims go with the
// set, and whether they go with a pod scaled away (Retain when unset).
func claimDeletion(set *appsv1.StatefulSet) (whenDeleted, whenScaled bool) {
	p := ptr.Deref(set.Spec.PersistentVolumeClaimRetentionPolicy, appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{})
	return p.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		p.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType
}

// wantedClaimOwners says which owner references the claims of pod should
// carry under set's policy.
func wantedClaimOwners(set *appsv1.StatefulSet, pod *v1.Pod) (bySet, byPod bool) {
	withSet, onScale := claimDeletion(set)
	byPod = onScale && !inOrdinalRange(set, pod)
	return withSet && !byPod, byPod
}

// refersTo reports whether ref names obj as a gvk, whatever the UID.
func refersTo(ref *metav1.OwnerReference, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	return ref.Name == obj.GetName() && ref.Kind == gvk.Kind && ref.APIVersion == gvk.GroupVersion().String()
}

func hasOwnerUID(claim *v1.PersistentVolumeClaim, obj metav1.Object) bool {
	return slices.ContainsFunc(claim.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == obj.GetUID() })
}

// refersToEarlier reports that the first reference naming obj carries another
// UID: the claim was owned by an earlier object of that name.
func refersToEarlier(claim *v1.PersistentVolumeClaim, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	i := slices.IndexFunc(claim.OwnerReferences, func(ref metav1.OwnerReference) bool { return refersTo(&ref, obj, gvk) })
	return i >= 0 && claim.OwnerReferences[i].UID != obj.GetUID()
}

// foreignController reports that, under a policy that deletes claims, the
// claim is controlled by something other than set and pod, or refers to an
// earlier set or pod of the same name. The retention policy then does not
// apply to it.
func foreignController(claim *v1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *v1.Pod) bool {
	if withSet, onScale := claimDeletion(set); !withSet && !onScale {
		return false // the default policy: no references to keep right
	}
	return slices.ContainsFunc(claim.OwnerReferences, func(ref metav1.OwnerReference) bool {
		switch {
		case refersTo(&ref, set, setKind):
			return ref.UID != set.UID
		case refersTo(&ref, pod, podKind):
			return ref.UID != pod.UID
		}
		return ptr.Deref(ref.Controller, false)
	})
}

// claimOwnersCurrent reports whether claim's owner references already say
// what set's retention policy wants for pod's claim.
func claimOwnersCurrent(claim *v1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *v1.Pod) bool {
	if refersToEarlier(claim, set, setKind) || refersToEarlier(claim, pod, podKind) {
		return true
	}
	if foreignController(claim, set, pod) {
		return !hasOwnerUID(claim, set) && !hasOwnerUID(claim, pod)
	}
	// A reference to set's or pod's UID that is not a controller reference is
	// always rewritten.
	if slices.ContainsFunc(claim.OwnerReferences, func(ref metav1.OwnerReference) bool {
		return (ref.UID == set.UID || ref.UID == pod.UID) && !ptr.Deref(ref.Controller, false)
	}) {
		return false
	}
	bySet, byPod := wantedClaimOwners(set, pod)
	return hasOwnerUID(claim, set) == bySet && hasOwnerUID(claim, pod) == byPod
}

// withPolicyOwners returns a copy of claim whose references to set and pod
// are what set's policy wants for pod; references to anything else are kept.
func withPolicyOwners(claim *v1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *v1.Pod) *v1.PersistentVolumeClaim {
	out := claim.DeepCopy()
	out.OwnerReferences = slices.DeleteFunc(out.OwnerReferences, func(ref metav1.OwnerReference) bool {
		return refersTo(&ref, set, setKind) || refersTo(&ref, pod, podKind)
	})
	if foreignController(claim, set, pod) {
		return out
	}
	bySet, byPod := wantedClaimOwners(set, pod)
	if byPod && !hasOwnerUID(out, pod) {
		out.OwnerReferences = append(out.OwnerReferences, *metav1.NewControllerRef(pod, podKind))
	}
	if bySet && !hasOwnerUID(out, set) {
		out.OwnerReferences = append(out.OwnerReferences, *metav1.NewControllerRef(set, setKind))
	}
	return out
}

// claimIsStale reports that a claim of the pod about to be created still
// refers to an earlier pod of that name while set deletes claims on scale
// down: the garbage collector is about to delete it, and the pod must wait
// rather than mount it.
func claimIsStale(set *appsv1.StatefulSet, pod *v1.Pod, claims map[string]*v1.PersistentVolumeClaim) bool {
	if _, onScale := claimDeletion(set); !onScale {
		return false
	}
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		if claim, ok := claims[claimNameFor(set, tmpl.Name, ordinalOf(pod))]; ok && refersToEarlier(claim, pod, podKind) {
			return true
		}
	}
	return false
}

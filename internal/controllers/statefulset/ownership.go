package statefulset

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// podOwnership is the outcome of the controller-reference rules for a set's
// candidate pods (those it controls and the orphans in its namespace).
type podOwnership struct {
	// owned are the pods the set manages in this sync: those it controls
	// that still match, and the orphans it adopts.
	owned []*v1.Pod
	// adopt are orphans that match the selector and the set's naming.
	adopt []*v1.Pod
	// release are pods the set controls that no longer match.
	release []*v1.Pod
}

// sortOutPods applies the controller-reference rules: a pod matches a set
// when the set's selector selects it and its name is <set>-<ordinal>. The set
// keeps the pods it controls that match, releases those that do not, and
// adopts matching orphans that are not being deleted. A set being deleted
// neither adopts nor releases. Pods controlled by anything else are ignored.
func sortOutPods(set *appsv1.StatefulSet, selector labels.Selector, candidates []*v1.Pod) podOwnership {
	var o podOwnership
	deleting := set.DeletionTimestamp != nil
	for _, pod := range candidates {
		matches := selector.Matches(labels.Set(pod.Labels)) && belongsByName(set, pod)
		ref := metav1.GetControllerOfNoCopy(pod)
		switch {
		case ref != nil && ref.UID != set.UID:
		case ref != nil && matches:
			o.owned = append(o.owned, pod)
		case ref != nil:
			if !deleting {
				o.release = append(o.release, pod)
			}
		case matches && !deleting && pod.DeletionTimestamp == nil && pod.Namespace == set.Namespace:
			o.adopt = append(o.adopt, pod)
			o.owned = append(o.owned, pod)
		}
	}
	return o
}

// orphanRevisions are the revisions, listed for set, that no controller owns.
func orphanRevisions(revisions []*appsv1.ControllerRevision) []*appsv1.ControllerRevision {
	var orphans []*appsv1.ControllerRevision
	for _, rev := range revisions {
		if metav1.GetControllerOfNoCopy(rev) == nil {
			orphans = append(orphans, rev)
		}
	}
	return orphans
}

// statusDiffers reports whether the status a sync computed must be written.
// Like upstream, a lower observedGeneration or a new collisionCount alone does
// not cause a write.
func statusDiffers(have, want *appsv1.StatefulSetStatus) bool {
	return want.ObservedGeneration > have.ObservedGeneration ||
		want.Replicas != have.Replicas ||
		want.ReadyReplicas != have.ReadyReplicas ||
		want.AvailableReplicas != have.AvailableReplicas ||
		want.CurrentReplicas != have.CurrentReplicas ||
		want.UpdatedReplicas != have.UpdatedReplicas ||
		want.CurrentRevision != have.CurrentRevision ||
		want.UpdateRevision != have.UpdateRevision ||
		!equality.Semantic.DeepEqual(want.Conditions, have.Conditions)
}

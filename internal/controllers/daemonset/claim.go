package daemonset

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// claims sorts the objects a set might own (pods or ControllerRevisions with
// its controller reference, and orphans in its namespace) by what the set
// does with them.
type claims[T metav1.Object] struct {
	// owned carry the set's controller reference and match its selector.
	owned []T
	// adopt are orphans that match the selector; they become owned once a
	// patch adds the controller reference.
	adopt []T
	// release carry the set's reference but no longer match; a patch removes
	// the reference. A set being deleted releases nothing.
	release []T
}

// classify decides ownership the way every Kubernetes controller does: the
// controller reference wins; an orphan is adopted when the selector matches,
// neither it nor the set is being deleted and it is in the set's namespace.
func classify[T metav1.Object](set *appsv1.DaemonSet, selector labels.Selector, objs []T) claims[T] {
	var c claims[T]
	for _, o := range objs {
		matches := selector.Matches(labels.Set(o.GetLabels()))
		ref := metav1.GetControllerOfNoCopy(o)
		switch {
		case ref != nil && ref.UID != set.UID:
			// Another controller's.
		case ref != nil && matches:
			c.owned = append(c.owned, o)
		case ref != nil:
			if set.DeletionTimestamp == nil {
				c.release = append(c.release, o)
			}
		case set.DeletionTimestamp != nil, !matches, o.GetDeletionTimestamp() != nil, o.GetNamespace() != set.Namespace:
			// An orphan this set does not take.
		default:
			c.adopt = append(c.adopt, o)
		}
	}
	return c
}

// adoptPatch is the strategic merge patch that makes set the controller of
// the object with uid; the uid precondition stops it applying to a
// re-created object of the same name.
func adoptPatch(set *appsv1.DaemonSet, uid types.UID) []byte {
	type meta struct {
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
		UID             types.UID               `json:"uid"`
	}
	b, _ := json.Marshal(struct {
		Metadata meta `json:"metadata"`
	}{meta{OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)}, UID: uid}})
	return b
}

// releasePatch is the strategic merge patch that removes set's reference
// from the object with uid.
func releasePatch(set *appsv1.DaemonSet, uid types.UID) []byte {
	type ref struct {
		Patch string    `json:"$patch"`
		UID   types.UID `json:"uid"`
	}
	type meta struct {
		OwnerReferences []ref     `json:"ownerReferences"`
		UID             types.UID `json:"uid"`
	}
	b, _ := json.Marshal(struct {
		Metadata meta `json:"metadata"`
	}{meta{OwnerReferences: []ref{{Patch: "delete", UID: set.UID}}, UID: uid}})
	return b
}

package kit

import (
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// Owners finds, in an informer cache, the owner objects (StatefulSets, Jobs,
// ...) that an owned object concerns.
type Owners[O metav1.Object] struct {
	// Kind is the owners' kind in controller references.
	Kind    string
	indexer cache.Indexer
	// selector is an owner's label selector; nil when orphans concern no
	// owner (they are never adopted).
	selector func(O) *metav1.LabelSelector
}

// NewOwners reads owners of kind from indexer, a shared informer's indexer
// (which indexes by namespace). selector, when not nil, makes orphans
// concern the owners whose selector selects them.
func NewOwners[O metav1.Object](kind string, indexer cache.Indexer, selector func(O) *metav1.LabelSelector) *Owners[O] {
	return &Owners[O]{Kind: kind, indexer: indexer, selector: selector}
}

// Of returns the owner a controller reference names, if the cache holds it
// with that UID.
func (o *Owners[O]) Of(namespace string, ref *metav1.OwnerReference) (O, bool) {
	var none O
	if ref == nil || ref.Kind != o.Kind {
		return none, false
	}
	owner, ok, _ := Cached[O](o.indexer, namespace+"/"+ref.Name)
	if !ok || owner.GetUID() != ref.UID {
		return none, false
	}
	return owner, true
}

// Selecting returns the owners in namespace whose selector selects
// objLabels: those that may adopt an orphan with these labels. An object
// without labels is selected by none, and an empty or invalid selector
// selects nothing.
func (o *Owners[O]) Selecting(namespace string, objLabels map[string]string) []O {
	if o.selector == nil || len(objLabels) == 0 {
		return nil
	}
	objs, _ := o.indexer.ByIndex(cache.NamespaceIndex, namespace) // nil on error
	var out []O
	for _, obj := range objs {
		if owner, ok := obj.(O); ok {
			sel, err := metav1.LabelSelectorAsSelector(o.selector(owner))
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(objLabels)) {
				out = append(out, owner)
			}
		}
	}
	return out
}

// Op is what an informer event did to an owned object.
type Op int

const (
	Added Op = iota
	Updated
	Deleted
)

// ChildEvent is an informer event of an owned object (the child), as it
// concerns one owner.
type ChildEvent[C any] struct {
	Op Op
	// Cur is the child as the event shows it (on Deleted, its last state);
	// Old is its previous state on Updated.
	Cur, Old C
	// Orphan: the child has no controller and this owner's selector selects
	// it.
	Orphan bool
	// Released: the update took this owner out of the child's controller
	// reference.
	Released bool
}

// Router routes a child kind's informer events to the owners they concern,
// as every Kubernetes controller does: to the owner the child's controller
// reference names (before and after an update that changed it), and for an
// orphan that is not being deleted, to every owner whose selector selects it
// when it appears or its labels change. Updates that change nothing (a
// resync) go nowhere.
type Router[O metav1.Object, C metav1.Object] struct {
	Owners *Owners[O]
	// Route is called for each owner an event concerns.
	Route func(owner O, ev ChildEvent[C])
}

var _ cache.ResourceEventHandler = (*Router[metav1.Object, metav1.Object])(nil)

// OnAdd implements cache.ResourceEventHandler.
func (r *Router[O, C]) OnAdd(obj any, _ bool) {
	child, ok := obj.(C)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(child); ref != nil {
		r.toOwner(child.GetNamespace(), ref, ChildEvent[C]{Op: Added, Cur: child})
		return
	}
	if child.GetDeletionTimestamp() == nil {
		r.toSelecting(child, ChildEvent[C]{Op: Added, Cur: child, Orphan: true})
	}
}

// OnUpdate implements cache.ResourceEventHandler.
func (r *Router[O, C]) OnUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(C)
	cur, ok2 := newObj.(C)
	if !ok1 || !ok2 || old.GetResourceVersion() == cur.GetResourceVersion() {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !reflect.DeepEqual(oldRef, curRef)
	if refChanged && oldRef != nil {
		r.toOwner(old.GetNamespace(), oldRef, ChildEvent[C]{Op: Updated, Cur: cur, Old: old, Released: true})
	}
	if curRef != nil {
		r.toOwner(cur.GetNamespace(), curRef, ChildEvent[C]{Op: Updated, Cur: cur, Old: old})
		return
	}
	if refChanged || !reflect.DeepEqual(old.GetLabels(), cur.GetLabels()) {
		r.toSelecting(cur, ChildEvent[C]{Op: Updated, Cur: cur, Old: old, Orphan: true})
	}
}

// OnDelete implements cache.ResourceEventHandler.
func (r *Router[O, C]) OnDelete(obj any) {
	if child, ok := Unwrap[C](obj); ok {
		r.toOwner(child.GetNamespace(), metav1.GetControllerOfNoCopy(child), ChildEvent[C]{Op: Deleted, Cur: child})
	}
}

func (r *Router[O, C]) toOwner(namespace string, ref *metav1.OwnerReference, ev ChildEvent[C]) {
	if owner, ok := r.Owners.Of(namespace, ref); ok {
		r.Route(owner, ev)
	}
}

func (r *Router[O, C]) toSelecting(child C, ev ChildEvent[C]) {
	for _, owner := range r.Owners.Selecting(child.GetNamespace(), child.GetLabels()) {
		r.Route(owner, ev)
	}
}

// Unwrap returns the object of a delete event, which may come as the
// informer's tombstone for an object deleted while its watch was down.
func Unwrap[T any](obj any) (T, bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	t, ok := obj.(T)
	return t, ok
}

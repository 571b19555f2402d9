package kit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Claims sorts the objects an owner might own (those carrying its controller
// reference, and its namespace's orphans) by what it does with them.
type Claims[T metav1.Object] struct {
	// Owned carry the owner's controller reference and match.
	Owned []T
	// Adopt are orphans that match; they become the owner's once a patch
	// gives them its controller reference.
	Adopt []T
	// Release carry the owner's controller reference but no longer match; a
	// patch takes it off.
	Release []T
}

// SortClaims applies the controller-reference rules: the controller
// reference decides, and objects another controller owns are left alone; an
// orphan that matches is adopted unless it or the owner is being deleted or
// it is in another namespace; an object the owner controls that no longer
// matches is released, unless the owner is being deleted.
func SortClaims[T metav1.Object](owner metav1.Object, candidates []T, matches func(T) bool) Claims[T] {
	var c Claims[T]
	ownerDeleting := owner.GetDeletionTimestamp() != nil
	for _, obj := range candidates {
		ref := metav1.GetControllerOfNoCopy(obj)
		switch {
		case ref != nil && ref.UID != owner.GetUID():
		case ref != nil && matches(obj):
			c.Owned = append(c.Owned, obj)
		case ref != nil:
			if !ownerDeleting {
				c.Release = append(c.Release, obj)
			}
		case !ownerDeleting && obj.GetDeletionTimestamp() == nil && obj.GetNamespace() == owner.GetNamespace() && matches(obj):
			c.Adopt = append(c.Adopt, obj)
		}
	}
	return c
}

// Claim carries out claims for owner (of kind gvk): it adopts the orphans,
// once canAdopt allows it, and releases the others, through patch. An adopted
// orphan also gets finalizers; a released object loses them. It returns the
// owner's objects: the owned ones and the adopted ones as patched. An object
// that is gone meanwhile is dropped silently.
func Claim[T metav1.Object](ctx context.Context, c Claims[T], owner metav1.Object, gvk schema.GroupVersionKind, canAdopt func() error,
	patch func(ctx context.Context, obj T, patch []byte) (T, error), finalizers ...string) ([]T, error) {
	objs := c.Owned
	var errs []error
	adopt := []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvk)}
	release := []map[string]any{{"$patch": "delete", "uid": owner.GetUID()}}
	for _, obj := range c.Adopt {
		if err := canAdopt(); err != nil {
			errs = append(errs, fmt.Errorf("can't adopt %s/%s: %w", obj.GetNamespace(), obj.GetName(), err))
			break
		}
		adopted, err := patch(ctx, obj, claimPatch(obj.GetUID(), adopt, "finalizers", finalizers))
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("adopting %s/%s: %w", obj.GetNamespace(), obj.GetName(), err))
		default:
			objs = append(objs, adopted)
		}
	}
	for _, obj := range c.Release {
		_, err := patch(ctx, obj, claimPatch(obj.GetUID(), release, "$deleteFromPrimitiveList/finalizers", finalizers))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			errs = append(errs, fmt.Errorf("releasing %s/%s: %w", obj.GetNamespace(), obj.GetName(), err))
		}
	}
	return objs, errors.Join(errs...)
}

// claimPatch is the strategic merge patch that adopts or releases the object
// with uid: ownerRefs makes the owner its controller, or takes the owner's
// reference off, and finalizers go under finalizersKey (added, or deleted
// from the list). The uid is a precondition, so the patch cannot apply to
// another object of the same name.
func claimPatch(uid types.UID, ownerRefs any, finalizersKey string, finalizers []string) []byte {
	meta := map[string]any{"ownerReferences": ownerRefs, "uid": uid}
	if len(finalizers) > 0 {
		meta[finalizersKey] = finalizers
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	return patch
}

// CanAdopt returns the check made before an owner's first adoption in a
// sync: the owner, read past the cache with get, must still be the same
// object and not be being deleted, because the cache may not show a deletion
// yet and a deleted owner must not take objects the garbage collector is
// about to orphan. The read happens at most once, and only if called.
func CanAdopt(ctx context.Context, owner metav1.Object, get func(ctx context.Context) (metav1.Object, error)) func() error {
	return sync.OnceValue(func() error {
		fresh, err := get(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("can't recheck DeletionTimestamp: %w", err)
		case fresh.GetUID() != owner.GetUID():
			return fmt.Errorf("original %s/%s is gone: got uid %v, wanted %v", owner.GetNamespace(), owner.GetName(), fresh.GetUID(), owner.GetUID())
		case fresh.GetDeletionTimestamp() != nil:
			return fmt.Errorf("%s/%s has just been deleted at %v", owner.GetNamespace(), owner.GetName(), fresh.GetDeletionTimestamp())
		}
		return nil
	})
}

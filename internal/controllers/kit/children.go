package kit

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// IndexChildren adds the index name to informer, so that an owner's sync
// finds what it may claim (SortClaims) without listing its namespace: an
// object whose controller reference isOwner accepts is filed under that
// owner's UID, one without a controller as an orphan of its namespace.
func IndexChildren(informer cache.SharedIndexInformer, name string, isOwner func(*metav1.OwnerReference) bool) error {
	if _, exists := informer.GetIndexer().GetIndexers()[name]; exists {
		return nil
	}
	return informer.AddIndexers(cache.Indexers{name: func(obj any) ([]string, error) {
		m, ok := obj.(metav1.Object)
		if !ok {
			return nil, nil
		}
		switch ref := metav1.GetControllerOfNoCopy(m); {
		case ref == nil:
			return []string{"orphan/" + m.GetNamespace()}, nil
		case isOwner(ref):
			return []string{string(ref.UID)}, nil
		}
		return nil, nil
	}})
}

// Candidates returns, from indexer's index name (see IndexChildren), the
// objects owner controls and the orphans of its namespace.
func Candidates[T any](indexer cache.Indexer, name string, owner metav1.Object) ([]T, error) {
	var out []T
	for _, key := range []string{string(owner.GetUID()), "orphan/" + owner.GetNamespace()} {
		objs, err := indexer.ByIndex(name, key)
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			if t, ok := obj.(T); ok {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

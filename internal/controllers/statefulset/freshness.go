package statefulset

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
)

// storeVersion reports the newest resource version an informer's store has
// applied (cache.Store's LastStoreSyncResourceVersion).
type storeVersion interface {
	LastStoreSyncResourceVersion() string
}

// freshness keeps a sync from planning on caches older than the controller's
// own last writes. Planning on a cache that has not yet seen a pod the last
// sync created would create it again, fail with AlreadyExists and report a
// failure that did not happen. Each write records its resource version under
// the set; a sync starts only once every store has reached the versions
// written for its set.
type freshness struct {
	stores map[string]storeVersion

	mu      sync.Mutex
	written map[types.NamespacedName]*writeRecord
}

type writeRecord struct {
	uid      types.UID
	versions map[string]string // resource → newest version written
}

func newFreshness(stores map[string]storeVersion) *freshness {
	return &freshness{stores: stores, written: map[types.NamespacedName]*writeRecord{}}
}

// wrote records that a write on behalf of the set key (uid) produced
// resourceVersion in resource.
func (f *freshness) wrote(key types.NamespacedName, uid types.UID, resource, version string) {
	if version == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.written[key]
	if rec == nil || rec.uid != uid {
		rec = &writeRecord{uid: uid, versions: map[string]string{}}
		f.written[key] = rec
	}
	if old, ok := rec.versions[resource]; ok {
		if c, err := resourceversion.CompareResourceVersion(old, version); err == nil && c >= 0 {
			return
		}
	}
	rec.versions[resource] = version
}

// caughtUp reports whether every store has seen the set's writes, and forgets
// them once it has.
func (f *freshness) caughtUp(key types.NamespacedName) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.written[key]
	if rec == nil {
		return true
	}
	for resource, version := range rec.versions {
		store := f.stores[resource]
		if store == nil {
			continue
		}
		seen := store.LastStoreSyncResourceVersion()
		if seen == "" {
			continue
		}
		if c, err := resourceversion.CompareResourceVersion(version, seen); err == nil && c > 0 {
			return false
		}
	}
	delete(f.written, key)
	return true
}

// forget drops what was recorded for a set that no longer exists.
func (f *freshness) forget(key types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.written, key)
}

package kit

import (
	"maps"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// OwnWritesTimeout is how long a write may go unseen before it no longer
// holds its owner back, so that a lost watch event cannot stall it forever.
// A sync that finds its writes unseen waits for their informer events, and
// asks for another look after OwnWritesTimeout in case none comes.
const OwnWritesTimeout = 5 * time.Minute

// Store is an informer's store, as OwnWrites reads it (a cache.Store).
type Store interface {
	// LastStoreSyncResourceVersion is the newest resource version the store
	// has applied.
	LastStoreSyncResourceVersion() string
	GetByKey(key string) (item any, exists bool, err error)
}

// OwnWrites remembers, per owner, the writes a controller made on its behalf
// that the informer caches may not show yet. A sync that planned on caches
// missing its controller's last writes would do them again: create a pod twice
// and report a failure that did not happen, delete one twice, or write a
// status from an old copy. A create, update or patch is shown once the store
// it is filed under has applied the resource version the write returned (a
// store applies its events in resource-version order); a delete once the store
// no longer holds the object, or holds it marked for deletion.
//
// Each write is filed under a name given to NewOwnWrites with the store that
// shows it, usually the resource ("pods"); a controller that treats two kinds
// of writes to one resource differently files them under two names.
type OwnWrites struct {
	clock  clock.PassiveClock
	stores map[string]Store

	mu     sync.Mutex
	owners map[types.UID]*pendingWrites
	// shown is, per name, the newest version its store has applied: a
	// store's own version can step back (a deleted object's event carries
	// its last version), what it has shown cannot.
	shown map[string]string
}

type pendingWrites struct {
	// objects is, per name, the newest resource version written to each
	// object.
	objects map[string]map[types.UID]string
	// deletes are the objects deleted, by name.
	deletes map[string][]deletedObject
	// last is when the newest write was made.
	last time.Time
	// waiting: a sync found these writes unseen and waits for them.
	waiting bool
}

type deletedObject struct {
	key string
	uid types.UID
}

// NewOwnWrites makes the memory of writes filed under the names of stores.
func NewOwnWrites(clk clock.PassiveClock, stores map[string]Store) *OwnWrites {
	return &OwnWrites{clock: clk, stores: stores, owners: map[types.UID]*pendingWrites{}, shown: map[string]string{}}
}

func (w *OwnWrites) pending(owner types.UID) *pendingWrites {
	p := w.owners[owner]
	if p == nil {
		p = &pendingWrites{objects: map[string]map[types.UID]string{}, deletes: map[string][]deletedObject{}}
		w.owners[owner] = p
	}
	p.last = w.clock.Now()
	return p
}

// Wrote records obj as returned by a create, update or patch made for owner.
func (w *OwnWrites) Wrote(owner types.UID, name string, obj metav1.Object) {
	version := obj.GetResourceVersion()
	if version == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pending(owner)
	if p.objects[name] == nil {
		p.objects[name] = map[types.UID]string{}
	}
	if last := p.objects[name][obj.GetUID()]; last == "" || ahead(version, last) {
		p.objects[name][obj.GetUID()] = version
	}
}

// Deleted records that a delete of the object namespace/name with uid,
// made for owner, was accepted.
func (w *OwnWrites) Deleted(owner types.UID, name, namespace, objName string, uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pending(owner)
	key := cache.ObjectName{Namespace: namespace, Name: objName}.String()
	p.deletes[name] = append(p.deletes[name], deletedObject{key: key, uid: uid})
}

// Seen reports whether the stores show every write made for owner, filed under
// names (all names when none are given), or the newest write is older than
// five minutes. If not, the owner is marked as waiting (see CaughtUp).
func (w *OwnWrites) Seen(owner types.UID, names ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.owners[owner]
	if p == nil || !w.unseen(p, names) || w.clock.Since(p.last) > OwnWritesTimeout {
		return true
	}
	p.waiting = true
	return false
}

// Unseen returns the objects written or deleted for owner under name that
// the store does not show so yet. Unlike Seen, it never gives up on an old
// write: a controller that counts on them (the Job controller's finalizer
// removals) must not act as if they had not happened.
func (w *OwnWrites) Unseen(owner types.UID, name string) map[types.UID]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.owners[owner]
	if p == nil {
		return nil
	}
	w.settle(p)
	if len(p.objects[name])+len(p.deletes[name]) == 0 {
		return nil
	}
	out := make(map[types.UID]bool, len(p.objects[name])+len(p.deletes[name]))
	for uid := range p.objects[name] {
		out[uid] = true
	}
	for _, d := range p.deletes[name] {
		out[d.uid] = true
	}
	return out
}

// CaughtUp reports whether a sync found owner's writes under names (all
// when none are given) unseen and the stores now show them all; it then
// stops waiting. An event handler calls it to sync such an owner at once.
func (w *OwnWrites) CaughtUp(owner types.UID, names ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.owners[owner]
	if p == nil || !p.waiting || w.unseen(p, names) {
		return false
	}
	p.waiting = false
	return true
}

// unseen settles p and reports whether writes under names remain. The
// caller holds w.mu.
func (w *OwnWrites) unseen(p *pendingWrites, names []string) bool {
	w.settle(p)
	if len(names) == 0 {
		names = slices.Collect(maps.Keys(w.stores))
	}
	for _, name := range names {
		if len(p.objects[name]) > 0 || len(p.deletes[name]) > 0 {
			return true
		}
	}
	return false
}

// Forget drops what is remembered for an owner that is gone or done.
func (w *OwnWrites) Forget(owner types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.owners, owner)
}

// settle drops the writes the stores now show. A store that has applied no
// version yet shows everything. The caller holds w.mu.
func (w *OwnWrites) settle(p *pendingWrites) {
	for name, store := range w.stores {
		if v := store.LastStoreSyncResourceVersion(); ahead(v, w.shown[name]) || w.shown[name] == "" {
			w.shown[name] = v
		}
		maps.DeleteFunc(p.objects[name], func(_ types.UID, v string) bool { return !ahead(v, w.shown[name]) })
		p.deletes[name] = slices.DeleteFunc(p.deletes[name], func(d deletedObject) bool { return !stillThere(store, d) })
	}
}

// stillThere reports that store still holds the deleted object unmarked.
func stillThere(store Store, d deletedObject) bool {
	obj, ok, _ := Cached[metav1.Object](store, d.key)
	return ok && obj.GetUID() == d.uid && obj.GetDeletionTimestamp() == nil
}

// ahead reports whether resource version a is known to be newer than b;
// versions that do not compare (or "") are not.
func ahead(a, b string) bool {
	c, err := resourceversion.CompareResourceVersion(a, b)
	return err == nil && c > 0
}

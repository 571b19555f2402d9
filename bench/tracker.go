package bench

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Tracker watches one kind of object in one namespace and keeps, for each
// named predicate, which objects satisfy it now and when each first did,
// timed when the event reached the bench process. Waiters are checked on
// every event, so a measured time is an event's arrival, never a poll.
// One tracker is one watch: the measurement stays cheap next to the load.
type Tracker[T interface {
	metav1.Object
	runtime.Object
}] struct {
	mu      sync.Mutex
	preds   map[string]func(T) bool
	now     map[string]map[types.UID]T
	first   map[string]map[types.UID]Seen[T]
	waiters []*waiter[T]
	stop    context.CancelFunc
}

// Seen is an object at the moment it first satisfied a predicate.
type Seen[T any] struct {
	Obj T
	At  time.Time
}

type waiter[T interface {
	metav1.Object
	runtime.Object
}] struct {
	cond func(View[T]) bool
	ch   chan time.Time
}

// View reads a tracker's state inside a waiter's condition.
type View[T interface {
	metav1.Object
	runtime.Object
}] struct{ t *Tracker[T] }

// Count is how many objects satisfy pred now.
func (v View[T]) Count(pred string) int { return len(v.t.now[pred]) }

// Ever is how many objects have satisfied pred at some point.
func (v View[T]) Ever(pred string) int { return len(v.t.first[pred]) }

// Any tells whether an object satisfying pred now also satisfies f.
func (v View[T]) Any(pred string, f func(T) bool) bool {
	for _, o := range v.t.now[pred] {
		if f(o) {
			return true
		}
	}
	return false
}

// Exists is the predicate every tracker has: the object exists.
const Exists = "exists"

// Track starts watching resource (e.g. "pods") of type T in namespace
// (empty for cluster-scoped) through rc, a REST client of the resource's
// group version, and returns once the initial list is in.
func Track[T interface {
	metav1.Object
	runtime.Object
}](ctx context.Context, rc rest.Interface, resource, namespace string, preds map[string]func(T) bool) (*Tracker[T], error) {
	t := &Tracker[T]{preds: map[string]func(T) bool{Exists: func(T) bool { return true }},
		now: map[string]map[types.UID]T{}, first: map[string]map[types.UID]Seen[T]{}}
	for name, f := range preds {
		t.preds[name] = f
	}
	for name := range t.preds {
		t.now[name] = map[types.UID]T{}
		t.first[name] = map[types.UID]Seen[T]{}
	}
	example := reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
	lw := cache.NewListWatchFromClient(rc, resource, namespace, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, example, 0, cache.Indexers{})
	_ = inf.SetTransform(func(o any) (any, error) {
		if m, ok := o.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return o, nil
	})
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.observe(o, false) },
		UpdateFunc: func(_, o any) { t.observe(o, false) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			t.observe(o, true)
		},
	})
	if err != nil {
		return nil, err
	}
	ctx, t.stop = context.WithCancel(ctx)
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.stop()
		return nil, fmt.Errorf("watching %s in %q: %w", resource, namespace, context.Cause(ctx))
	}
	return t, nil
}

// Stop ends the watch.
func (t *Tracker[T]) Stop() { t.stop() }

func (t *Tracker[T]) observe(o any, deleted bool) {
	at := time.Now()
	obj, ok := o.(T)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	uid := obj.GetUID()
	for name, f := range t.preds {
		if !deleted && f(obj) {
			t.now[name][uid] = obj
			if _, seen := t.first[name][uid]; !seen {
				t.first[name][uid] = Seen[T]{Obj: obj, At: at}
			}
		} else {
			delete(t.now[name], uid)
		}
	}
	kept := t.waiters[:0]
	for _, w := range t.waiters {
		if w.cond(View[T]{t}) {
			w.ch <- at
		} else {
			kept = append(kept, w)
		}
	}
	t.waiters = kept
}

// Wait returns when cond holds, with the arrival time of the event that
// made it hold (or now, if it already holds).
func (t *Tracker[T]) Wait(ctx context.Context, what string, cond func(View[T]) bool) (time.Time, error) {
	w := &waiter[T]{cond: cond, ch: make(chan time.Time, 1)}
	t.mu.Lock()
	if cond(View[T]{t}) {
		t.mu.Unlock()
		return time.Now(), nil
	}
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	select {
	case at := <-w.ch:
		return at, nil
	case <-ctx.Done():
		t.mu.Lock()
		for i, x := range t.waiters {
			if x == w {
				t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
				break
			}
		}
		t.mu.Unlock()
		return time.Time{}, fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
	}
}

// Firsts lists the objects that have satisfied pred, each at its first time.
func (t *Tracker[T]) Firsts(pred string) []Seen[T] {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Seen[T], 0, len(t.first[pred]))
	for _, s := range t.first[pred] {
		out = append(out, s)
	}
	return out
}

// First is when the object uid first satisfied pred.
func (t *Tracker[T]) First(pred string, uid types.UID) (Seen[T], bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.first[pred][uid]
	return s, ok
}

// Count is how many objects satisfy pred now.
func (t *Tracker[T]) Count(pred string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.now[pred])
}

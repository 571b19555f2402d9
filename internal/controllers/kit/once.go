package kit

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Once remembers, per object and topic, the value an event was last
// recorded for, so that a condition that lasts (an annotation that does not
// parse, a rollout held back) is reported once, not at every sync, and
// again when it changes.
type Once struct {
	mu   sync.Mutex
	seen map[types.UID]map[string]string
}

// First reports whether value is new for the object's topic and remembers it.
func (o *Once) First(uid types.UID, topic, value string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if last, ok := o.seen[uid][topic]; ok && last == value {
		return false
	}
	if o.seen == nil {
		o.seen = map[types.UID]map[string]string{}
	}
	if o.seen[uid] == nil {
		o.seen[uid] = map[string]string{}
	}
	o.seen[uid][topic] = value
	return true
}

// Clear forgets the object's topic: the condition is over, and it is
// reported again if it comes back.
func (o *Once) Clear(uid types.UID, topic string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.seen[uid], topic)
}

// Forget drops what is remembered of an object that is gone.
func (o *Once) Forget(uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.seen, uid)
}

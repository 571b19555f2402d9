package kit

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
)

// Event is an event a plan asks to record on the object it is about; plans
// return them so that only the apply step writes.
type Event struct {
	// Type is v1.EventTypeNormal or v1.EventTypeWarning.
	Type, Reason, Message string
}

// Record records events on obj.
func Record(rec record.EventRecorder, obj runtime.Object, events ...Event) {
	for _, e := range events {
		rec.Event(obj, e.Type, e.Reason, e.Message)
	}
}

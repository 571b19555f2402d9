// Package statefulset is quartet's StatefulSet controller. It owns the pods,
// per-pod PersistentVolumeClaims and ControllerRevisions of every StatefulSet:
// stable names from spec.ordinals.start, one claim per volumeClaimTemplate and
// ordinal, ordered (OrderedReady) or Parallel pod management, and rolling
// updates from one ControllerRevision to the next.
//
// The work of one sync is split the way quartet's controllers are split:
// controller.go reads the informer caches and runs the queue, plan.go decides
// (a pure function of the set, its pods, claims, revisions and now), and
// apply.go performs the writes behind small interfaces.
package statefulset

// Package statefulset is quartet's StatefulSet controller. It owns the pods,
// per-pod PersistentVolumeClaims and ControllerRevisions of every StatefulSet:
// stable names from spec.ordinals.start, one claim per volumeClaimTemplate and
// ordinal, ordered (OrderedReady) or Parallel pod management, and rolling
// updates from one ControllerRevision to the next.
//
// controller.go reads the informer caches, claims pods and settles revisions;
// plan.go decides (decide: a pure function of the set, its pods, claims,
// revisions and now, in stages: replace-unready, replicas, scale-down, rolling
// update); apply.go makes the writes. It behaves as upstream's does, except
// where docs/statefulset.md says otherwise: the replace-unready-after
// extension (replace.go), claims watched, no no-op pod writes, a slow start
// that grows a window rather than fixed batches, and a currentReplicas that
// never goes negative.
package statefulset

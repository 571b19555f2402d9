// Package kit is what quartet's workload controllers are built from, so that
// each controller package holds only what is particular to its kind:
//
//   - Config and Base: a controller is made from a client, a shared informer
//     factory and a clock; Base records its events, waits for its caches and
//     runs its work queues (Queue: a key's sync returns when to look again or
//     an error to retry with back-off).
//   - Owners and Router: an informer event of an owned object (a pod, a
//     ControllerRevision, a Job) becomes a sync of the owner it concerns,
//     through its controller reference, or for an orphan, through the owners'
//     selectors.
//   - SortClaims and Claim: the controller-reference rules, adopting matching
//     orphans and releasing children that no longer match.
//   - OwnWrites: which of a controller's own writes its informer caches do
//     not show yet, so that a sync does not act twice on a stale cache.
//   - SlowStart: many writes at once, starting small and growing with each
//     success, so that a failing apiserver or a full quota costs few calls.
//   - Once: an event recorded once per object and topic, not at every sync.
//   - IsReady, AvailableIn: pod readiness and availability (minReadySeconds).
//   - TemplatePatch: the data of a StatefulSet's or DaemonSet's
//     ControllerRevision, as Kubernetes writes it.
//
// The package kittest beside it is the fake apiserver and the polling helper
// the controllers' tests share.
package kit

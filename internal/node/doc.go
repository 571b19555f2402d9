// Package node runs quartet's node agents: one Host per quartet process, with
// one shared pod informer, a worker per pod, and one agent per node that keeps
// the kubelet's side of the contract with the API server (Node object, Lease,
// pod lifecycle and status, the kubelet API's containerLogs).
//
// The pod state machine is planPod (plan.go): a pure function of the pod,
// what the agent knows of its containers and the time, table-tested with a
// fake clock. syncPod (podsync.go) observes the runtimes, plans, acts and
// writes the status; each pod's podWorker (worker.go) runs its syncs one at a
// time. The runtimes are reached only through runtime.Runtime, in a map from
// kind to runtime; the runtime mode is the order in which they are tried.
package node

// Package node runs quartet's node agents: one Host per quartet process, with
// one shared pod informer and work queue, and one agent per node that keeps
// the kubelet's side of the contract with the API server (Node object, Lease,
// pod lifecycle and status, the kubelet API's containerLogs).
//
// The pod state machine is planPod (plan.go): a pure function of the pod,
// what the agent knows of its containers and the time, table-tested with a
// fake clock. syncPod (podsync.go) observes the runtimes, plans, acts through
// the process or sim runtime and writes the status.
package node

// Package daemonset is quartet's DaemonSet controller: it keeps exactly one
// pod of each DaemonSet on every node the set's template fits, and rolls those
// pods to new revisions (RollingUpdate, OnDelete, and the opt-in canary by node).
//
// controller.go reads the informer caches, claims pods and revisions and
// routes node events; plan.go decides (decide: placement, then one step of the
// rolling update, and the status), with fit.go (which nodes a set wants),
// pods.go (the pod a node gets) and revisions.go (revision names and data)
// as pure helpers; apply.go makes the writes. Where it differs from
// upstream's (order of replacements, node events, the canary annotation) is
// listed in docs/daemonset.md.
package daemonset

// Package daemonset is quartet's DaemonSet controller: it keeps exactly one
// pod of each DaemonSet on every node the set's template fits, and rolls those
// pods to new revisions (RollingUpdate, OnDelete, and the opt-in canary by node).
//
// The controller reads its inputs from shared informers (controller.go),
// decides in pure functions (fit.go, plan.go, status.go, revisions.go) and
// writes through small interfaces (apply.go).
package daemonset

// Package manager runs a chosen set of quartet's workload controllers
// against an apiserver. `quartet up` starts them in process through Start;
// `quartet controllers` (Run) runs them against any cluster, as a
// controller manager does: start-up checks of the apiserver's version and of
// the permissions it was given (SelfSubjectAccessReviews), a probe for the
// cluster's own StatefulSet, DaemonSet and CronJob controllers, leader
// election on a Lease so that several replicas run with one active, health
// endpoints, and the Prometheus metrics of the process on /metrics behind
// the apiserver's authentication and authorization.
package manager

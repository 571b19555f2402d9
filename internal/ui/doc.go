// Package ui serves `quartet ui`: a live web view of a cluster's
// StatefulSets, DaemonSets, Jobs, CronJobs, nodes and events. It watches the
// cluster through informers, computes each view's model in Go (view_*.go,
// pure functions of the objects and now), and pushes the models to the
// browser over server-sent events; the front end in web/ only draws them.
package ui

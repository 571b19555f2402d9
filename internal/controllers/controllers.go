// Package controllers is quartet's own workload controllers, one subpackage
// per kind (statefulset, daemonset, job, cronjob, ttlafterfinished), all built
// from the same kit (the kit subpackage) on the same skeleton: controller.go
// (informers, queue, sync), plan.go (pure: what a sync observed → what it
// decides), apply.go (every write), doc.go (what it does, how it differs from
// upstream's).
package controllers

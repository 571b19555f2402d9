package controllers

import (
	"quartet.dev/quartet/internal/controllers/cronjob"
	"quartet.dev/quartet/internal/controllers/daemonset"
	"quartet.dev/quartet/internal/controllers/job"
	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/statefulset"
	"quartet.dev/quartet/internal/controllers/ttlafterfinished"
)

// Spec is one of quartet's workload controllers as whoever runs them sees
// it (`quartet up`, and any process that runs them against a cluster).
type Spec struct {
	// Name names the controller (upstream's controller name without
	// "-controller").
	Name string
	// ServiceAccount is the kube-system service account of upstream's
	// controller of the same kind, whose bootstrap RBAC this controller
	// runs with.
	ServiceAccount string
	// Workers is how many keys the controller syncs at once.
	Workers int
	New     func(kit.Config) (kit.Controller, error)
}

// All lists quartet's controllers in the order they start. Worker counts are
// upstream's kube-controller-manager defaults, except CronJob: every CronJob
// on the same schedule comes due at once, and each run is two writes, so a
// thousand need more than five workers to start within a second.
var All = []Spec{
	{Name: "statefulset", ServiceAccount: "statefulset-controller", Workers: 5, New: adapt(statefulset.New)},
	{Name: "daemonset", ServiceAccount: "daemon-set-controller", Workers: 2, New: adapt(daemonset.New)},
	{Name: "job", ServiceAccount: "job-controller", Workers: 5, New: adapt(job.New)},
	{Name: "cronjob", ServiceAccount: "cronjob-controller", Workers: 32, New: adapt(cronjob.New)},
	{Name: "ttlafterfinished", ServiceAccount: "ttl-after-finished-controller", Workers: 5, New: adapt(ttlafterfinished.New)},
}

// adapt turns a controller package's New into the registry's signature.
func adapt[C kit.Controller](newFn func(kit.Config) (C, error)) func(kit.Config) (kit.Controller, error) {
	return func(cfg kit.Config) (kit.Controller, error) {
		c, err := newFn(cfg)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

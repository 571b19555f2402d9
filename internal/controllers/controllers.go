// Package controllers holds what quartet's own workload controllers share: the
// dependencies the control plane hands each of them. Each controller lives in a
// subpackage named after its kind (statefulset, daemonset, job, cronjob,
// ttlafterfinished).
package controllers

import (
	"context"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Config is what the control plane gives every quartet workload controller.
// A controller's New registers the informers it needs on Informers; the
// control plane starts the factory after every controller is constructed and
// then calls Run.
type Config struct {
	// Client talks to the apiserver with the controller's own identity, which
	// carries exactly the RBAC permissions upstream's controller of the same
	// kind has.
	Client kubernetes.Interface
	// Informers is shared by all quartet workload controllers.
	Informers informers.SharedInformerFactory
	// Clock is the real clock in production and a fake one in tests; a nil
	// Clock means the real clock.
	Clock clock.WithTicker
}

// Controller is a reconcile loop that runs until its context is cancelled.
type Controller interface {
	// Run waits for the informer caches to sync, starts workers goroutines and
	// blocks until ctx is done.
	Run(ctx context.Context, workers int)
}

// RealClock returns c, or the real clock when c is nil.
func RealClock(c clock.WithTicker) clock.WithTicker {
	if c == nil {
		return clock.RealClock{}
	}
	return c
}

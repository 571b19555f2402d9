package kit

import (
	"context"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Config is what a workload controller is made from. A controller's New
// registers the informers it needs on Informers; whoever runs the controllers
// starts the factory after every controller is made, then calls Run.
type Config struct {
	// Client talks to the apiserver with the controller's own identity, which
	// carries exactly the RBAC permissions upstream's controller of the same
	// kind has.
	Client kubernetes.Interface
	// Informers is shared by all the controllers of a process.
	Informers informers.SharedInformerFactory
	// Clock is the real clock in production and a fake one in tests; nil
	// means the real clock.
	Clock clock.WithTicker
	// QueueMetrics receives the work queues' metrics (depth, adds, latency,
	// retries) under each queue's name (see NewQueue); nil means client-go's
	// global provider, which discards them unless a process registers one.
	QueueMetrics workqueue.MetricsProvider
	// ManagedBy is the spec.managedBy value of the objects the controller
	// takes, for kinds that have the field (Job). "" means the controller
	// is the cluster's own: it takes objects without the field or naming
	// upstream's controller (kubernetes.io/job-controller), as in `quartet
	// up`; another value makes it take only the objects naming it, beside
	// the cluster's own controller (`quartet controllers`).
	ManagedBy string
}

// Controller is a reconcile loop that runs until its context is cancelled.
type Controller interface {
	// Run waits for the informer caches to sync, starts workers goroutines
	// per work queue and blocks until ctx is done.
	Run(ctx context.Context, workers int)
}

package ttlafterfinished

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// deletionDuration has the name and buckets of upstream's TTL-after-finished
// controller's metric of the same meaning
// (ttl_after_finished_controller_job_deletion_duration_seconds), so that
// dashboards made for upstream's keep working.
var deletionDuration = metrics.NewHistogram(&metrics.HistogramOpts{
	Subsystem: "ttl_after_finished_controller", Name: "job_deletion_duration_seconds",
	Help:    "The time it took to delete the job since it became eligible for deletion",
	Buckets: metrics.ExponentialBuckets(0.1, 2, 14), StabilityLevel: metrics.ALPHA,
})

// RegisterMetrics adds the TTL-after-finished controller's metrics to the
// process's registry (once): the process calls it when it starts this
// controller, never beside upstream's, whose metric has the same name.
var RegisterMetrics = sync.OnceFunc(func() { legacyregistry.MustRegister(deletionDuration) })

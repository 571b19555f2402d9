package cronjob

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// creationSkew has the name and buckets of upstream's CronJob controller's
// metric of the same meaning (cronjob_controller_job_creation_skew_duration_seconds),
// so that dashboards made for upstream's keep working.
var creationSkew = metrics.NewHistogram(&metrics.HistogramOpts{
	Subsystem: "cronjob_controller", Name: "job_creation_skew_duration_seconds",
	Help:    "Time between when a cronjob is scheduled to be run, and when the corresponding job is created",
	Buckets: metrics.ExponentialBuckets(1, 2, 10), StabilityLevel: metrics.STABLE,
})

// RegisterMetrics adds the CronJob controller's metrics to the process's
// registry (once): the process calls it when it starts this controller,
// never beside upstream's, whose metric has the same name.
var RegisterMetrics = sync.OnceFunc(func() { legacyregistry.MustRegister(creationSkew) })

package manager

import (
	// Client-go's metrics into Kubernetes' legacy registry, as
	// kube-controller-manager registers them: work queues (depth, adds,
	// latency, work duration, retries, under each queue's name), REST client
	// requests and leader election.
	_ "k8s.io/component-base/metrics/prometheus/clientgo"

	"quartet.dev/quartet/internal/controllers/cronjob"
	"quartet.dev/quartet/internal/controllers/daemonset"
	"quartet.dev/quartet/internal/controllers/job"
	"quartet.dev/quartet/internal/controllers/statefulset"
	"quartet.dev/quartet/internal/controllers/ttlafterfinished"
)

// controllerMetrics register the metrics a controller keeps under the names
// of upstream's controller of the same kind (statefulset_controller_*,
// daemonset_controller_*, job_controller_*, cronjob_controller_*,
// ttl_after_finished_controller_*), and their extensions' own (quartet_*).
// Start registers
// them for the controllers it starts only: a process that runs upstream's
// controllers of those kinds instead (quartet up
// --workload-controllers=upstream) registers upstream's, and the two sets
// share names.
var controllerMetrics = map[string]func(){
	"statefulset":      statefulset.RegisterMetrics,
	"daemonset":        daemonset.RegisterMetrics,
	"job":              job.RegisterMetrics,
	"cronjob":          cronjob.RegisterMetrics,
	"ttlafterfinished": ttlafterfinished.RegisterMetrics,
}

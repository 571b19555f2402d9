package daemonset

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// The DaemonSet controller's metrics. Upstream's
// (daemonset_controller_stale_sync_skips_total) keeps its name and labels, so
// that dashboards made for kube-controller-manager keep working; the canary
// extension has its own (quartet_daemonset_controller_*).
var (
	staleSkips = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "daemonset_controller", Name: "stale_sync_skips_total",
		Help:           "Total number of DaemonSet syncs skipped due to a stale watch cache.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"group", "resource"})
	canaryHeld = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "quartet", Subsystem: "daemonset_controller", Name: "rollout_held_pods",
		Help: "Pods of an old revision that a rolling update leaves alone because their node does not match " +
			"the DaemonSet's quartet.dev/rollout-node-selector annotation (DaemonSets with a valid annotation only)",
		StabilityLevel: metrics.ALPHA,
	}, []string{"daemonset_namespace", "daemonset_name"})
)

// RegisterMetrics adds the metrics to the registry once, as the process starts
// this controller: never beside upstream's, whose names are the same.
var RegisterMetrics = sync.OnceFunc(func() { legacyregistry.MustRegister(staleSkips, canaryHeld) })

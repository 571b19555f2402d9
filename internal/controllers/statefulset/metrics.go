package statefulset

import (
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"quartet.dev/quartet/internal/controllers/kit"
)

// The StatefulSet controller's metrics. Those of upstream's
// (statefulset_controller_*) keep its names and labels, so that dashboards
// made for kube-controller-manager keep working; quartet's extension has
// its own (quartet_statefulset_controller_*).
const metricsSubsystem = "statefulset_controller"

var setLabels = []string{"statefulset_namespace", "statefulset_name", "pod_management_policy"}

var (
	maxUnavailableGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: metricsSubsystem, Name: "statefulset_max_unavailable",
		Help:           "Maximum number of unavailable pods allowed during StatefulSet rolling updates",
		StabilityLevel: metrics.ALPHA,
	}, setLabels)
	unavailableGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: metricsSubsystem, Name: "statefulset_unavailable_replicas",
		Help:           "Current number of unavailable pods in StatefulSet",
		StabilityLevel: metrics.ALPHA,
	}, setLabels)
	staleSkips = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: metricsSubsystem, Name: "stale_sync_skips_total",
		Help:           "Total number of StatefulSet syncs skipped due to a stale watch cache.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"group", "resource"})
	unreadyReplacements = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "quartet", Subsystem: metricsSubsystem, Name: "unready_pod_replacements_total",
		Help: "Pods of an outdated revision deleted by the quartet.dev/replace-unready-after extension " +
			"because they had not been Ready for the annotation's duration",
		StabilityLevel: metrics.ALPHA,
	}, []string{"statefulset_namespace"})
)

// RegisterMetrics adds the metrics to the process's registry, once. The
// process calls it when it starts this controller: never beside upstream's,
// whose names are the same.
var RegisterMetrics = sync.OnceFunc(func() {
	legacyregistry.MustRegister(maxUnavailableGauge, unavailableGauge, staleSkips, unreadyReplacements)
})

// recordStatus sets the set's gauges from the status a sync wrote:
// unavailable is spec.replicas less the available replicas (missing pods
// count), and maxUnavailable, with the MaxUnavailableStatefulSet gate on (as
// upstream), the resolved rollingUpdate.maxUnavailable.
func recordStatus(set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus, gate bool) {
	labels := []string{set.Namespace, set.Name, string(set.Spec.PodManagementPolicy)}
	unavailableGauge.WithLabelValues(labels...).Set(float64(max(int32(replicaCount(set))-status.AvailableReplicas, 0)))
	if n, err := resolveMaxUnavailable(set); gate && err == nil {
		maxUnavailableGauge.WithLabelValues(labels...).Set(float64(n))
	}
}

// forgetSet drops a deleted set's gauges (upstream keeps them until the
// process ends).
func forgetSet(namespace, name string) {
	for _, policy := range []appsv1.PodManagementPolicyType{appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement} {
		unavailableGauge.DeleteLabelValues(namespace, name, string(policy))
		maxUnavailableGauge.DeleteLabelValues(namespace, name, string(policy))
	}
}

// recordStaleSkip counts a sync skipped because the cache does not show the
// controller's last writes for the set yet, under the first resource whose
// write is missing: the set's status (apps, statefulsets), its pods or its
// claims (as upstream's labels say which cache was behind).
func recordStaleSkip(writes *kit.OwnWrites, set types.UID) {
	for _, r := range [][2]string{{"apps", "statefulsets"}, {"", "pods"}, {"", "persistentvolumeclaims"}} {
		if !writes.Seen(set, r[1]) {
			staleSkips.WithLabelValues(r[0], r[1]).Inc()
			return
		}
	}
}

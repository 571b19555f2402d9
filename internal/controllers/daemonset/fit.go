package daemonset

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulinghelper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// comparisonTolerations mirrors the TaintTolerationComparisonOperators
// feature gate, alpha and off by default in Kubernetes v1.37: Lt and Gt
// tolerations match nothing.
const comparisonTolerations = false

// nodeFit says whether a DaemonSet wants a pod on a node. The two answers
// differ on purpose: a taint the pod does not tolerate keeps new pods off the
// node, but only a NoExecute taint removes a pod that already runs there.
type nodeFit struct {
	// shouldRun: a pod should be created on the node if it has none.
	shouldRun bool
	// shouldContinueRunning: a pod already on the node may stay.
	shouldContinueRunning bool
}

// fitFor returns the fit of a node (none for nil) for one DaemonSet, whose
// tolerations and parsed node affinity it builds once. The fit checks the
// template's nodeName, its nodeSelector and required node affinity, then the
// node's taints against the daemon pod's tolerations. The node's
// spec.unschedulable is not consulted: cordon works through the
// node.kubernetes.io/unschedulable taint, which daemon pods tolerate.
func fitFor(logger klog.Logger, set *appsv1.DaemonSet) func(*corev1.Node) nodeFit {
	spec := &set.Spec.Template.Spec
	tolerations := daemonPodTolerations(spec)
	affinity := nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity)
	untolerated := func(taints []corev1.Taint, effects ...corev1.TaintEffect) bool {
		_, found := schedulinghelper.FindMatchingUntoleratedTaint(logger, taints, tolerations, func(t *corev1.Taint) bool {
			return slices.Contains(effects, t.Effect)
		}, comparisonTolerations)
		return found
	}
	return func(node *corev1.Node) nodeFit {
		if node == nil || spec.NodeName != "" && spec.NodeName != node.Name {
			return nodeFit{}
		}
		// A template whose affinity does not parse matches nothing it cannot
		// parse; the error itself is ignored, as upstream does.
		if matches, _ := affinity.Match(node); !matches {
			return nodeFit{}
		}
		taints := node.Spec.Taints
		if len(taints) == 0 || !untolerated(taints, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute) {
			return nodeFit{shouldRun: true, shouldContinueRunning: true}
		}
		return nodeFit{shouldContinueRunning: !untolerated(taints, corev1.TaintEffectNoExecute)}
	}
}

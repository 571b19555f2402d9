package daemonset

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"
)

func TestFit(t *testing.T) {
	controlPlane := "node-role.kubernetes.io/control-plane"
	cases := map[string]struct {
		set  []setOpt
		node *corev1.Node
		want nodeFit
	}{
		"plain node": {
			node: testNode("n"),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"nodeSelector matches": {
			set:  []setOpt{withNodeSelector("hardware", "gpu")},
			node: testNode("n", label("hardware", "gpu")),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"nodeSelector does not match: the pod must go": {
			set:  []setOpt{withNodeSelector("hardware", "gpu")},
			node: testNode("n", label("hardware", "cpu")),
			want: nodeFit{},
		},
		"untolerated NoSchedule keeps a running pod but starts none": {
			node: testNode("n", taint("dedicated", corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldRun: false, shouldContinueRunning: true},
		},
		"untolerated NoExecute evicts": {
			node: testNode("n", taint("dedicated", corev1.TaintEffectNoExecute)),
			want: nodeFit{},
		},
		"PreferNoSchedule is ignored": {
			node: testNode("n", taint("dedicated", corev1.TaintEffectPreferNoSchedule)),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"control-plane taint without toleration": {
			node: testNode("cp", taint(controlPlane, corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldContinueRunning: true},
		},
		"control-plane taint tolerated": {
			set:  []setOpt{withTolerations(corev1.Toleration{Key: controlPlane, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})},
			node: testNode("cp", taint(controlPlane, corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"cordoned node: the unschedulable taint is tolerated": {
			node: testNode("n", taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule), func(n *corev1.Node) { n.Spec.Unschedulable = true }),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"not-ready and unreachable NoExecute are tolerated": {
			node: testNode("n", taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"pressure taints are tolerated": {
			node: testNode("n", taint(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule), taint(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule), taint(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"network-unavailable blocks a pod on the pod network": {
			node: testNode("n", taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldContinueRunning: true},
		},
		"network-unavailable is tolerated with hostNetwork": {
			set:  []setOpt{withHostNetwork()},
			node: testNode("n", taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"template nodeName elsewhere": {
			set:  []setOpt{func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.NodeName = "other" }},
			node: testNode("n"),
			want: nodeFit{},
		},
		"template nodeName here": {
			set:  []setOpt{func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.NodeName = "n" }},
			node: testNode("n"),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"required node affinity on a label": {
			set: []setOpt{func(s *appsv1.DaemonSet) {
				s.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
					}}},
				}}
			}},
			node: testNode("n", label("zone", "b")),
			want: nodeFit{},
		},
		"required node affinity on metadata.name": {
			set:  []setOpt{func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.Affinity = pinToNode(nil, "n") }},
			node: testNode("n"),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"a NoSchedule toleration does not cover NoExecute": {
			set:  []setOpt{withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})},
			node: testNode("n", taint("dedicated", corev1.TaintEffectNoExecute)),
			want: nodeFit{},
		},
		"a toleration without effect covers both": {
			set:  []setOpt{withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists})},
			node: testNode("n", taint("dedicated", corev1.TaintEffectNoExecute), taint("dedicated", corev1.TaintEffectNoSchedule)),
			want: nodeFit{shouldRun: true, shouldContinueRunning: true},
		},
		"Gt tolerations are off, as behind Kubernetes' alpha gate": {
			set: []setOpt{withTolerations(corev1.Toleration{Key: "level", Operator: corev1.TolerationOpGt, Value: "1", Effect: corev1.TaintEffectNoSchedule})},
			node: testNode("n", func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "level", Value: "5", Effect: corev1.TaintEffectNoSchedule}}
			}),
			want: nodeFit{shouldContinueRunning: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			logger, _ := ktesting.NewTestContext(t)
			got := fitFor(logger, testSet(tc.set...))(tc.node)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(nodeFit{})); diff != "" {
				t.Errorf("fit (-want +got):\n%s", diff)
			}
		})
	}
}

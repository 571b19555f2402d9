package daemonset

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// t0 is the fake clock's start in every test.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type setOpt func(*appsv1.DaemonSet)

func testSet(opts ...setOpt) *appsv1.DaemonSet {
	limit := int32(10)
	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	s := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: "agent", Namespace: "default", UID: "set-uid", Generation: 1,
			Annotations: map[string]string{appsv1.DeprecatedTemplateGeneration: "1"},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero},
			},
			RevisionHistoryLimit: &limit,
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withNodeSelector(k, v string) setOpt {
	return func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.NodeSelector = map[string]string{k: v} }
}

func withTolerations(t ...corev1.Toleration) setOpt {
	return func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.Tolerations = t }
}

func withHostNetwork() setOpt {
	return func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.HostNetwork = true }
}

func withSurge(maxSurge, maxUnavailable intstr.IntOrString) setOpt {
	return func(s *appsv1.DaemonSet) {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable}
	}
}

func withOnDelete() setOpt {
	return func(s *appsv1.DaemonSet) {
		s.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}
}

func withMinReady(sec int32) setOpt {
	return func(s *appsv1.DaemonSet) { s.Spec.MinReadySeconds = sec }
}

func withAnnotation(k, v string) setOpt {
	return func(s *appsv1.DaemonSet) { s.Annotations[k] = v }
}

type nodeOpt func(*corev1.Node)

func testNode(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func label(k, v string) nodeOpt {
	return func(n *corev1.Node) { n.Labels[k] = v }
}

func taint(key string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect}) }
}

func testNodes(n int, opts ...nodeOpt) []*corev1.Node {
	out := make([]*corev1.Node, n)
	for i := range out {
		out[i] = testNode(fmt.Sprintf("node-%d", i+1), opts...)
	}
	return out
}

type podOpt func(*corev1.Pod)

// testPod is a bound daemon pod of testSet on node, at revision hash,
// created at t0 and Running but not Ready unless ready() is given.
func testPod(name, node, hash string, opts ...podOpt) *corev1.Pod {
	isController := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			Labels:            map[string]string{"app": "agent", appsv1.ControllerRevisionHashLabelKey: hash},
			CreationTimestamp: metav1.NewTime(t0),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "set-uid", Controller: &isController,
			}},
		},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// readySince marks the pod Ready from t.
func readySince(t time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t),
		}}
	}
}

func ready() podOpt { return readySince(t0.Add(-time.Hour)) }

func phase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

func createdAt(t time.Time) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}

func deleting() podOpt {
	return func(p *corev1.Pod) {
		ts := metav1.NewTime(t0)
		p.DeletionTimestamp = &ts
	}
}

// unbound makes the pod unbound, pinned to its node through affinity only.
func unbound() podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = pinToNode(nil, p.Spec.NodeName)
		p.Spec.NodeName = ""
	}
}

func podLabel(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Labels[k] = v }
}

// byNode groups pods by target node, as sync does.
func byNode(pods ...*corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		n, err := targetNodeName(p)
		if err != nil {
			panic(err)
		}
		out[n] = append(out[n], p)
	}
	return out
}

// podNames lists the pods' names, in order.
func podNames(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

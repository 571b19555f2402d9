package daemonset

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDaemonPodTolerations(t *testing.T) {
	notReady := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	unreachable := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	disk := corev1.Toleration{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	memory := corev1.Toleration{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	pid := corev1.Toleration{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	unschedulable := corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	network := corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	user := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "infra", Effect: corev1.TaintEffectNoSchedule}

	cases := map[string]struct {
		spec corev1.PodSpec
		want []corev1.Toleration
	}{
		"none in the template": {
			want: []corev1.Toleration{notReady, unreachable, disk, memory, pid, unschedulable},
		},
		"hostNetwork adds network-unavailable": {
			spec: corev1.PodSpec{HostNetwork: true},
			want: []corev1.Toleration{notReady, unreachable, disk, memory, pid, unschedulable, network},
		},
		"template tolerations come first": {
			spec: corev1.PodSpec{Tolerations: []corev1.Toleration{user}},
			want: []corev1.Toleration{user, notReady, unreachable, disk, memory, pid, unschedulable},
		},
		"a template toleration equal to a default loses its tolerationSeconds, in place": {
			spec: corev1.PodSpec{Tolerations: []corev1.Toleration{
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				user,
			}},
			want: []corev1.Toleration{unreachable, user, notReady, disk, memory, pid, unschedulable},
		},
		"a template toleration with another operator is kept next to the default": {
			spec: corev1.PodSpec{Tolerations: []corev1.Toleration{
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpEqual, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](30)},
			}},
			want: []corev1.Toleration{
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpEqual, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](30)},
				notReady, unreachable, disk, memory, pid, unschedulable,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := tc.spec.DeepCopy()
			got := daemonPodTolerations(&tc.spec)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tolerations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, &tc.spec); diff != "" {
				t.Errorf("the template was modified:\n%s", diff)
			}
		})
	}
}

func TestPinToNode(t *testing.T) {
	pin := func(node string) *corev1.NodeSelector {
		return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}}
	}
	preferred := []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "ssd", Operator: corev1.NodeSelectorOpExists}},
	}}}
	antiAffinity := &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname"}}}

	cases := map[string]struct {
		in   *corev1.Affinity
		want *corev1.Affinity
	}{
		"no affinity": {
			want: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pin("n1")}},
		},
		"pod anti-affinity only is kept": {
			in:   &corev1.Affinity{PodAntiAffinity: antiAffinity},
			want: &corev1.Affinity{PodAntiAffinity: antiAffinity, NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pin("n1")}},
		},
		"preferred node affinity is kept": {
			in: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: preferred}},
			want: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: preferred,
				RequiredDuringSchedulingIgnoredDuringExecution:  pin("n1"),
			}},
		},
		"required terms are replaced by the pin": {
			in: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
				{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1", "n2"}}}},
			}}}},
			want: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pin("n1")}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := pinToNode(tc.in, "n1")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("affinity (-want +got):\n%s", diff)
			}
			if n, err := targetNodeName(&corev1.Pod{Spec: corev1.PodSpec{Affinity: got}}); err != nil || n != "n1" {
				t.Errorf("targetNodeName of the pinned pod = %q, %v; want n1", n, err)
			}
		})
	}
}

func TestTargetNodeName(t *testing.T) {
	cases := map[string]struct {
		pod     *corev1.Pod
		want    string
		wantErr bool
	}{
		"bound":               {pod: &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1", Affinity: pinToNode(nil, "n2")}}, want: "n1"},
		"pinned":              {pod: &corev1.Pod{Spec: corev1.PodSpec{Affinity: pinToNode(nil, "n2")}}, want: "n2"},
		"neither":             {pod: &corev1.Pod{}, wantErr: true},
		"affinity on a label": {pod: &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "a", Operator: corev1.NodeSelectorOpExists}}}}}}}}}, wantErr: true},
		"two names": {pod: &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
		}}}}}}}, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := targetNodeName(tc.pod)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("targetNodeName = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestNewDaemonPod(t *testing.T) {
	set := testSet(withHostNetwork(), func(s *appsv1.DaemonSet) {
		s.Spec.Template.Annotations = map[string]string{"a": "b"}
		s.Spec.Template.Finalizers = []string{"example.com/keep"}
	})
	gen := int64(3)
	pod := newDaemonPod(set, "node-2", "abc123", &gen)

	wantLabels := map[string]string{"app": "agent", "pod-template-generation": "3", "controller-revision-hash": "abc123"}
	if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if pod.GenerateName != "agent-" || pod.Name != "" || pod.Namespace != "default" {
		t.Errorf("name: generateName %q name %q namespace %q", pod.GenerateName, pod.Name, pod.Namespace)
	}
	if pod.Spec.NodeName != "" {
		t.Errorf("spec.nodeName = %q; the scheduler binds daemon pods", pod.Spec.NodeName)
	}
	if n, _ := targetNodeName(pod); n != "node-2" {
		t.Errorf("pod targets %q, want node-2", n)
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.UID != set.UID || ref.Kind != "DaemonSet" || ref.APIVersion != "apps/v1" || !*ref.BlockOwnerDeletion {
		t.Errorf("controller reference = %+v", ref)
	}
	if len(pod.Spec.Tolerations) != 7 {
		t.Errorf("tolerations = %v, want the 7 defaults of a hostNetwork pod", pod.Spec.Tolerations)
	}
	if pod.Annotations["a"] != "b" || len(pod.Finalizers) != 1 {
		t.Errorf("annotations %v finalizers %v not copied from the template", pod.Annotations, pod.Finalizers)
	}
	if set.Spec.Template.Spec.Affinity != nil || len(set.Spec.Template.Spec.Tolerations) != 0 || len(set.Spec.Template.Labels) != 1 {
		t.Errorf("the set's template was modified: %+v", set.Spec.Template)
	}

	noGen := newDaemonPod(set, "node-2", "abc123", nil)
	if _, ok := noGen.Labels["pod-template-generation"]; ok {
		t.Errorf("pod-template-generation set without a template generation")
	}
}

func TestIsUpdated(t *testing.T) {
	gen := int64(2)
	cases := map[string]struct {
		labels map[string]string
		hash   string
		gen    *int64
		want   bool
	}{
		"hash matches":             {labels: map[string]string{"controller-revision-hash": "h2"}, hash: "h2", want: true},
		"hash differs":             {labels: map[string]string{"controller-revision-hash": "h1"}, hash: "h2", gen: &gen},
		"generation matches":       {labels: map[string]string{"controller-revision-hash": "h1", "pod-template-generation": "2"}, hash: "h2", gen: &gen, want: true},
		"generation differs":       {labels: map[string]string{"pod-template-generation": "1"}, hash: "h2", gen: &gen},
		"no labels, empty hash":    {labels: map[string]string{}, hash: ""},
		"empty hash never matches": {labels: map[string]string{"controller-revision-hash": ""}, hash: ""},
		"generation label, no gen": {labels: map[string]string{"pod-template-generation": "2"}, hash: "h2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := isUpdated(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}, tc.hash, tc.gen); got != tc.want {
				t.Errorf("isUpdated = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestComparePodAge(t *testing.T) {
	older := testPod("b", "n", "h", createdAt(t0.Add(-time.Minute)))
	newer := testPod("a", "n", "h")
	sameTimeA := testPod("a2", "n", "h")
	unboundOld := testPod("c", "n", "h", createdAt(t0.Add(-time.Hour)), unbound())
	for _, tc := range []struct {
		a, b *corev1.Pod
		want int
	}{
		{older, newer, -1},
		{newer, older, 1},
		{newer, sameTimeA, -1},
		{newer, unboundOld, -1},
		{unboundOld, older, 1},
	} {
		if got := comparePodAge(tc.a, tc.b); got != tc.want {
			t.Errorf("comparePodAge(%s, %s) = %d, want %d", tc.a.Name, tc.b.Name, got, tc.want)
		}
	}
}

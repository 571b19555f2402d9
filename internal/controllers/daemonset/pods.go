package daemonset

import (
	"cmp"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1helper "k8s.io/kubernetes/pkg/apis/core/v1/helper"

	"quartet.dev/quartet/internal/controllers/kit"
)

// podTemplateGenerationLabel carries the set's deprecated template generation
// on its pods; a pod whose value equals the set's current generation counts as
// updated, like one whose controller-revision-hash equals the current hash.
const podTemplateGenerationLabel = "pod-template-generation"

// defaultDaemonTolerations are added to every daemon pod so that node
// problems and cordon do not evict it or keep it off its node. NoExecute ones
// have no tolerationSeconds: the pod stays for as long as the node does.
var defaultDaemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkToleration is added only to hostNetwork pods: they do not need
// the pod network, so a node whose network is not yet up can run them.
var hostNetworkToleration = corev1.Toleration{
	Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
}

// daemonPodTolerations returns the tolerations a daemon pod built from spec
// carries: the template's, each default one added, or put in place of a
// template toleration with the same key, operator, value and effect, as
// upstream does it (pkg/apis/core/v1/helper). spec is not modified.
func daemonPodTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	out := &corev1.PodSpec{Tolerations: spec.Tolerations}
	for _, t := range defaultDaemonTolerations {
		v1helper.AddOrUpdateTolerationInPodSpec(out, &t)
	}
	if spec.HostNetwork {
		v1helper.AddOrUpdateTolerationInPodSpec(out, &hostNetworkToleration)
	}
	return out.Tolerations
}

// pinToNode makes affinity require the node named nodeName through a
// matchFields term on metadata.name, so that the default scheduler binds the
// pod there and nowhere else. Any required node selector terms the template
// had are replaced by that single term (the DaemonSet already checked them
// when it chose the node); preferred terms and pod (anti-)affinity are kept.
func pinToNode(affinity *corev1.Affinity, nodeName string) *corev1.Affinity {
	if affinity == nil {
		affinity = &corev1.Affinity{}
	}
	if affinity.NodeAffinity == nil {
		affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{
			Key:      metav1.ObjectNameField,
			Operator: corev1.NodeSelectorOpIn,
			Values:   []string{nodeName},
		}},
	}}}
	return affinity
}

// targetNodeName is the node a daemon pod belongs to: spec.nodeName once the
// scheduler has bound it, before that the single value of its metadata.name
// matchFields requirement.
func targetNodeName(pod *corev1.Pod) (string, error) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, nil
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, req := range term.MatchFields {
				if req.Key != metav1.ObjectNameField || req.Operator != corev1.NodeSelectorOpIn {
					continue
				}
				if len(req.Values) != 1 {
					return "", fmt.Errorf("pod %s/%s names %d nodes in its %s requirement, want 1", pod.Namespace, pod.Name, len(req.Values), metav1.ObjectNameField)
				}
				return req.Values[0], nil
			}
		}
	}
	return "", fmt.Errorf("pod %s/%s has neither spec.nodeName nor a required %s node affinity", pod.Namespace, pod.Name, metav1.ObjectNameField)
}

// templateGeneration is the set's deprecated template generation annotation;
// nil when it is absent or not a number.
func templateGeneration(set *appsv1.DaemonSet) *int64 {
	g, err := strconv.ParseInt(set.Annotations[appsv1.DeprecatedTemplateGeneration], 10, 64)
	if err != nil {
		return nil
	}
	return &g
}

// isUpdated reports whether a pod belongs to the set's current revision, by
// its hash or its template generation.
func isUpdated(pod *corev1.Pod, hash string, generation *int64) bool {
	if hash != "" && pod.Labels[appsv1.ControllerRevisionHashLabelKey] == hash {
		return true
	}
	return generation != nil && pod.Labels[podTemplateGenerationLabel] == strconv.FormatInt(*generation, 10)
}

// newDaemonPod builds the pod the set runs on nodeName.
func newDaemonPod(set *appsv1.DaemonSet, nodeName, hash string, generation *int64) *corev1.Pod {
	pod := kit.PodFromTemplate(&set.Spec.Template, set, controllerKind)
	if generation != nil {
		pod.Labels[podTemplateGenerationLabel] = strconv.FormatInt(*generation, 10)
	}
	if hash != "" {
		pod.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
	}
	pod.Spec.Tolerations = daemonPodTolerations(&pod.Spec)
	pod.Spec.Affinity = pinToNode(pod.Spec.Affinity, nodeName)
	return pod
}

// comparePodAge orders a node's daemon pods oldest first, with pods the
// scheduler has already bound before pending ones and the name as the tie
// break. The first pod in this order is the one kept when a node has too many,
// and the one whose state the status reports.
func comparePodAge(a, b *corev1.Pod) int {
	if aBound, bBound := a.Spec.NodeName != "", b.Spec.NodeName != ""; aBound != bBound {
		if aBound {
			return -1
		}
		return 1
	}
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
}

package ui

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
)

// DaemonSetsView is the grid of nodes × DaemonSets.
type DaemonSetsView struct {
	DaemonSets []DaemonSetColumn `json:"daemonSets"`
	Nodes      []NodeRow         `json:"nodes"`
	// Cells[i][j] is node i × DaemonSet j.
	Cells [][]DaemonCell `json:"cells"`
}

// DaemonSetColumn is one DaemonSet and its status counts.
type DaemonSetColumn struct {
	Ref            Ref    `json:"ref"`
	Desired        int32  `json:"desired"`
	Current        int32  `json:"current"`
	Ready          int32  `json:"ready"`
	Updated        int32  `json:"updated"`
	Available      int32  `json:"available"`
	Misscheduled   int32  `json:"misscheduled"`
	UpdateStrategy string `json:"updateStrategy"`
	MaxUnavailable string `json:"maxUnavailable,omitempty"`
	MaxSurge       string `json:"maxSurge,omitempty"`
	// Revision is the newest ControllerRevision's hash: the one a pod must
	// carry to count as updated.
	Revision     string `json:"revision,omitempty"`
	NodeSelector string `json:"nodeSelector,omitempty"`
	// CanarySelector is quartet's quartet.dev/rollout-node-selector.
	CanarySelector string `json:"canarySelector,omitempty"`
}

// NodeRow is a node as a row header shows it.
type NodeRow struct {
	Name   string   `json:"name"`
	Ready  bool     `json:"ready"`
	Cordon bool     `json:"cordoned"`
	Labels []string `json:"labels"`
	Taints []string `json:"taints"`
}

// Cell states.
const (
	CellRunning  = "running"  // a ready pod of the newest revision
	CellOld      = "old"      // a ready pod of an older revision: the rollout has yet to reach it
	CellStarting = "starting" // a pod that is not ready (yet)
	CellMissing  = "missing"  // the DaemonSet wants a pod here and there is none
	CellExcluded = "excluded" // the DaemonSet does not run here; Why says why
	CellExtra    = "extra"    // a pod on a node the DaemonSet no longer wants (being removed)
)

// DaemonCell is one node × DaemonSet.
type DaemonCell struct {
	State string     `json:"state"`
	Why   string     `json:"why,omitempty"`
	Pods  []PodBrief `json:"pods,omitempty"`
	// Updated is true when the pod carries the DaemonSet's newest revision.
	Updated bool `json:"updated"`
}

// daemonTolerations are the tolerations the DaemonSet controller adds to
// every daemon pod, so cordoned, not-ready and pressured nodes keep theirs.
func daemonTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	tol := slices.Clone(spec.Tolerations)
	add := func(key string, effect corev1.TaintEffect) {
		tol = append(tol, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect})
	}
	add(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
	return tol
}

// exclusion says why a DaemonSet runs no pod on node, "" when it should.
func exclusion(ds *appsv1.DaemonSet, node *corev1.Node) string {
	spec := &ds.Spec.Template.Spec
	if len(spec.NodeSelector) > 0 {
		for _, k := range slices.Sorted(maps.Keys(spec.NodeSelector)) {
			if v, ok := node.Labels[k]; !ok || v != spec.NodeSelector[k] {
				return fmt.Sprintf("nodeSelector %s=%s: the node has %s", k, spec.NodeSelector[k], labelValue(node.Labels, k))
			}
		}
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		ok, err := nodeaffinity.NewRequiredNodeAffinity(nil, a).Match(node)
		if err != nil {
			return "node affinity cannot be read: " + err.Error()
		}
		if !ok {
			return "required node affinity does not match the node"
		}
	}
	noSchedule := func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}
	if t, found := schedcorev1.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, daemonTolerations(spec), noSchedule, false); found {
		return "taint " + taintString(t) + " is not tolerated"
	}
	return ""
}

func labelValue(labels map[string]string, k string) string {
	if v, ok := labels[k]; ok {
		return k + "=" + v
	}
	return "no " + k + " label"
}

func taintString(t corev1.Taint) string {
	if t.Value == "" {
		return t.Key + ":" + string(t.Effect)
	}
	return t.Key + "=" + t.Value + ":" + string(t.Effect)
}

func nodeRow(n *corev1.Node) NodeRow {
	r := NodeRow{Name: n.Name, Cordon: n.Spec.Unschedulable, Labels: []string{}, Taints: []string{}}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			r.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		if strings.HasPrefix(k, "kubernetes.io/") || strings.HasPrefix(k, "beta.kubernetes.io/") {
			continue // the well-known labels every node has
		}
		r.Labels = append(r.Labels, k+"="+n.Labels[k])
	}
	for _, t := range n.Spec.Taints {
		r.Taints = append(r.Taints, taintString(t))
	}
	return r
}

// podNode is the node a pod runs on or is bound for: its nodeName, or the
// metadata.name in its required node affinity (how daemon pods name their
// node before the scheduler binds them).
func podNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == "metadata.name" && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

// daemonSetsView is the grid of nodes × DaemonSets.
func daemonSetsView(s *snapshot) DaemonSetsView {
	sets := slices.Clone(s.DaemonSets)
	byNamespaceName(sets)
	nodes := slices.Clone(s.Nodes)
	byNamespaceName(nodes)
	v := DaemonSetsView{DaemonSets: []DaemonSetColumn{}, Nodes: []NodeRow{}, Cells: [][]DaemonCell{}}
	newest := newestRevisions(s)
	pods := daemonPods(s)
	for _, ds := range sets {
		v.DaemonSets = append(v.DaemonSets, daemonSetColumn(ds, newest[ds.Namespace+"/"+ds.Name]))
	}
	for _, n := range nodes {
		v.Nodes = append(v.Nodes, nodeRow(n))
		row := make([]DaemonCell, 0, len(sets))
		for j, ds := range sets {
			row = append(row, daemonCell(ds, n, pods[daemonKey{ds.Namespace + "/" + ds.Name, n.Name}], v.DaemonSets[j].Revision))
		}
		v.Cells = append(v.Cells, row)
	}
	return v
}

// newestRevisions is the newest ControllerRevision of each DaemonSet, by
// namespace/name.
func newestRevisions(s *snapshot) map[string]*appsv1.ControllerRevision {
	newest := map[string]*appsv1.ControllerRevision{}
	for _, r := range s.Revisions {
		ref := metaControllerOf(r.OwnerReferences)
		if ref == nil || ref.Kind != "DaemonSet" {
			continue
		}
		k := r.Namespace + "/" + ref.Name
		if cur := newest[k]; cur == nil || r.Revision > cur.Revision {
			newest[k] = r
		}
	}
	return newest
}

// daemonKey is a DaemonSet (namespace/name) and a node.
type daemonKey struct{ set, node string }

// daemonPods are the DaemonSets' pods by DaemonSet and node.
func daemonPods(s *snapshot) map[daemonKey][]*corev1.Pod {
	pods := map[daemonKey][]*corev1.Pod{}
	for _, p := range s.Pods {
		ref := metaControllerOf(p.OwnerReferences)
		if ref == nil || ref.Kind != "DaemonSet" {
			continue
		}
		k := daemonKey{p.Namespace + "/" + ref.Name, podNode(p)}
		pods[k] = append(pods[k], p)
	}
	return pods
}

// daemonSetColumn is a DaemonSet's column head; newest is its newest
// revision, or nil.
func daemonSetColumn(ds *appsv1.DaemonSet, newest *appsv1.ControllerRevision) DaemonSetColumn {
	col := DaemonSetColumn{
		Ref:     Ref{Kind: "DaemonSet", Namespace: ds.Namespace, Name: ds.Name},
		Desired: ds.Status.DesiredNumberScheduled, Current: ds.Status.CurrentNumberScheduled,
		Ready: ds.Status.NumberReady, Updated: ds.Status.UpdatedNumberScheduled,
		Available: ds.Status.NumberAvailable, Misscheduled: ds.Status.NumberMisscheduled,
		UpdateStrategy: string(ds.Spec.UpdateStrategy.Type),
		CanarySelector: ds.Annotations["quartet.dev/rollout-node-selector"],
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		if ru.MaxUnavailable != nil {
			col.MaxUnavailable = ru.MaxUnavailable.String()
		}
		if ru.MaxSurge != nil {
			col.MaxSurge = ru.MaxSurge.String()
		}
	}
	if newest != nil {
		col.Revision = newest.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	}
	var sel []string
	for _, k := range slices.Sorted(maps.Keys(ds.Spec.Template.Spec.NodeSelector)) {
		sel = append(sel, k+"="+ds.Spec.Template.Spec.NodeSelector[k])
	}
	col.NodeSelector = strings.Join(sel, ",")
	return col
}

// daemonCell is a DaemonSet's cell on node n, which holds the pods here;
// revision is the DaemonSet's newest.
func daemonCell(ds *appsv1.DaemonSet, n *corev1.Node, here []*corev1.Pod, revision string) DaemonCell {
	slices.SortFunc(here, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	why := exclusion(ds, n)
	c := DaemonCell{Why: why}
	for _, p := range here {
		c.Pods = append(c.Pods, podBrief(p))
	}
	switch {
	case len(here) == 0 && why != "":
		c.State = CellExcluded
	case len(here) == 0:
		c.State = CellMissing
	case why != "":
		c.State = CellExtra
	default:
		// The newest pod decides (a surge can put two here).
		p := here[len(here)-1]
		for _, q := range here {
			if q.DeletionTimestamp == nil && q.CreationTimestamp.After(p.CreationTimestamp.Time) {
				p = q
			}
		}
		c.Updated = revision != "" && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == revision
		switch {
		case !podReady(p):
			c.State = CellStarting
		case c.Updated:
			c.State = CellRunning
		default:
			c.State = CellOld
		}
	}
	return c
}

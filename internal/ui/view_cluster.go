package ui

import (
	"slices"
	"strings"
)

// ClusterView is the nodes with their pods.
type ClusterView struct {
	Nodes []NodePods `json:"nodes"`
	// Unscheduled are pods bound to no node (yet).
	Unscheduled []PodBrief `json:"unscheduled"`
	PodCount    int        `json:"podCount"`
}

// EventsView is the event stream: the newest events matching the filter,
// at most maxEvents; Matched counts all that match.
type EventsView struct {
	Events  []Event `json:"events"`
	Matched int     `json:"matched"`
	Total   int     `json:"total"`
}

// NodePods is a node and the pods bound to it.
type NodePods struct {
	NodeRow
	Pods []PodBrief `json:"pods"`
}

const maxEvents = 500

// clusterView shows every node and the pods of namespace ("" for all).
func clusterView(s *snapshot, namespace string) ClusterView {
	nodes := slices.Clone(s.Nodes)
	byNamespaceName(nodes)
	v := ClusterView{Nodes: []NodePods{}, Unscheduled: []PodBrief{}}
	index := map[string]int{}
	for i, n := range nodes {
		index[n.Name] = i
		v.Nodes = append(v.Nodes, NodePods{NodeRow: nodeRow(n), Pods: []PodBrief{}})
	}
	pods := slices.Clone(s.Pods)
	byNamespaceName(pods)
	for _, p := range pods {
		if namespace != "" && p.Namespace != namespace {
			continue
		}
		v.PodCount++
		b := podBrief(p)
		if i, ok := index[p.Spec.NodeName]; ok {
			v.Nodes[i].Pods = append(v.Nodes[i].Pods, b)
		} else {
			v.Unscheduled = append(v.Unscheduled, b)
		}
	}
	return v
}

// eventsView lists the events of namespace ("" for all) whose type,
// reason, object or message contain every word of filter
// (case-insensitive), newest first.
func eventsView(s *snapshot, namespace, filter string) EventsView {
	v := EventsView{Events: []Event{}}
	words := strings.Fields(strings.ToLower(filter))
	for _, e := range s.Events {
		v.Total++
		if namespace != "" && e.InvolvedObject.Namespace != namespace {
			continue
		}
		ev := eventOf(e)
		if !matchesAll(ev, words) {
			continue
		}
		v.Events = append(v.Events, ev)
	}
	v.Matched = len(v.Events)
	sortEvents(v.Events)
	if len(v.Events) > maxEvents {
		v.Events = v.Events[:maxEvents]
	}
	return v
}

func matchesAll(e Event, words []string) bool {
	if len(words) == 0 {
		return true
	}
	hay := strings.ToLower(strings.Join([]string{e.Type, e.Reason, e.Object.Kind, e.Object.Namespace, e.Object.Name,
		e.Object.Kind + "/" + e.Object.Name, e.Message, e.Source}, " "))
	for _, w := range words {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

package node

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Each node acts as itself: `system:node:<name>` in group system:nodes,
// the identity the apiserver's Node authorizer and NodeRestriction admission
// know, so a node may write only its own Node status, Lease and pods, and
// read only the Secrets, ConfigMaps and claims of pods bound to it. Only the
// shared informers (every bound pod, every node) use the host's read-only
// client.

// newNodeClient returns the client node name acts with.
func (h *Host) newNodeClient(name string) (kubernetes.Interface, error) {
	if h.cfg.NodeClient == nil {
		return h.client, nil
	}
	return h.cfg.NodeClient(name)
}

func (a *agent) setClient(c kubernetes.Interface) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.client = c
}

// nodeClient is the node's own client (the host's before one is set).
func (a *agent) nodeClient() kubernetes.Interface {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client == nil {
		return a.host.client
	}
	return a.client
}

// clientOfNode is node's client, or the host's read-only one for a node this
// host does not run (whose writes the apiserver then refuses).
func (h *Host) clientOfNode(node string) kubernetes.Interface {
	h.mu.Lock()
	a := h.agents[node]
	h.mu.Unlock()
	if a == nil {
		return h.client
	}
	return a.nodeClient()
}

// podClient is the client of the node the pod is bound to.
func (h *Host) podClient(pod *v1.Pod) kubernetes.Interface {
	return h.clientOfNode(pod.Spec.NodeName)
}

// nodeEventSink writes each event as the node that recorded it (its
// source host), through one broadcaster for all nodes.
type nodeEventSink struct{ h *Host }

var _ record.EventSink = nodeEventSink{}

func (s nodeEventSink) sink(e *v1.Event) *typedcorev1.EventSinkImpl {
	return &typedcorev1.EventSinkImpl{Interface: s.h.clientOfNode(e.Source.Host).CoreV1().Events(e.Namespace)}
}

func (s nodeEventSink) Create(e *v1.Event) (*v1.Event, error) { return s.sink(e).Create(e) }
func (s nodeEventSink) Update(e *v1.Event) (*v1.Event, error) { return s.sink(e).Update(e) }
func (s nodeEventSink) Patch(e *v1.Event, data []byte) (*v1.Event, error) {
	return s.sink(e).Patch(e, data)
}

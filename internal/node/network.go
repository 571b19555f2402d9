package node

import (
	"context"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/node/sandbox"
)

// setupSandbox gives a pod its network namespace on the pod network. A
// failure is the kubelet's FailedCreatePodSandBox, retried with back-off.
func (h *Host) setupSandbox(ctx context.Context, rec *podRecord, pod *v1.Pod, now time.Time) {
	st := rec.state
	cidr := rec.agent.podCIDR()
	if cidr == "" {
		st.NetworkError = "network is not ready: node " + rec.agent.name + " has no podCIDR yet"
		return
	}
	sb, err := h.cfg.Network.Setup(ctx, sandbox.Pod{
		UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
		PodCIDR: cidr, IP: pod.Status.PodIP, PortMappings: hostPorts(pod),
	})
	if err != nil {
		st.NetworkDelay = nextDelay(st.NetworkDelay, 500*time.Millisecond, time.Minute)
		st.NetworkRetryAt = now.Add(st.NetworkDelay)
		h.podEvent(rec, pod, plannedEvent{Type: v1.EventTypeWarning, Reason: reasonFailedSandbox,
			Message: "Failed to create pod sandbox: " + err.Error()})
		return
	}
	rec.mu.Lock()
	rec.sandbox = sb
	rec.mu.Unlock()
	st.PodIP, st.NetworkReady, st.NetworkError = sb.IPs[0].String(), true, ""
	st.NetworkDelay, st.NetworkRetryAt = 0, time.Time{}
}

// teardownSandbox removes a pod's pause container and network namespace,
// once nothing of it runs any more (or it is being killed).
func (h *Host) teardownSandbox(ctx context.Context, rec *podRecord) {
	rec.removePause()
	rec.mu.Lock()
	sb := rec.sandbox
	rec.sandbox = nil
	rec.mu.Unlock()
	if sb == nil || h.cfg.Network == nil {
		return
	}
	if err := h.cfg.Network.Teardown(context.WithoutCancel(ctx), string(rec.uid)); err != nil {
		klog.FromContext(ctx).Error(err, "Tearing down the pod sandbox", "podUID", rec.uid)
	}
}

// netNSPath is the namespace a container of the pod joins ("" = the host's).
func (r *podRecord) netNSPath() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sandbox == nil {
		return ""
	}
	return r.sandbox.NetNSPath
}

// probeHost is where network probes without a host go: the pod's IP when
// it has a network of its own (as the kubelet probes), else 127.0.0.1.
func (r *podRecord) probeHost() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sandbox == nil {
		return hostIP
	}
	return r.sandbox.IPs[0].String()
}

// hostPorts are the pod's containers' hostPorts, as CNI portMappings.
func hostPorts(pod *v1.Pod) []sandbox.PortMapping {
	var out []sandbox.PortMapping
	// The kubelet maps the ports of the regular containers only.
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := strings.ToLower(string(p.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			out = append(out, sandbox.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
		}
	}
	return out
}

package sandbox

import (
	"encoding/json"
	"net"
)

// DefaultConflist is the file quartet writes in the CNI configuration
// directory at every start; a conflist that sorts before it wins.
const DefaultConflist = "10-quartet.conflist"

// ifName is the pod's interface, as in every Kubernetes pod.
const ifName = "eth0"

// Config configures a Manager.
type Config struct {
	Network *Network
	// Executable is the quartet binary the plugin links in BinDir point
	// at; "" means this program.
	Executable string
	// ExtraPluginDirs are searched after BinDir for plugins the conflist
	// names that are not built in (default /opt/cni/bin).
	ExtraPluginDirs []string
}

// Pod is what a sandbox needs to know of its pod.
type Pod struct {
	UID, Namespace, Name string
	// PodCIDR is the node's spec.podCIDR, the range its pods' addresses
	// come from (passed to IPAM as the ipRanges capability).
	PodCIDR string
	// IP is an address the pod had before (its status after a restart of
	// quartet): IPAM is asked for it first, and for any address when it is
	// not free.
	IP           string
	PortMappings []PortMapping
}

// PortMapping is a container's hostPort, as the portMappings capability
// carries it.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Sandbox is a pod's network, ready for its containers.
type Sandbox struct {
	// NetNSPath is the bind-mounted namespace file runtimes join.
	NetNSPath string
	IPs       []net.IP
}

// DefaultConflistJSON is the conflist quartet writes for n.
func DefaultConflistJSON(n *Network) []byte {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "quartet",
		"plugins": []any{
			map[string]any{
				"type":             "bridge",
				"bridge":           n.Bridge,
				"isGateway":        true,
				"isDefaultGateway": true,
				"hairpinMode":      true,
				"capabilities":     map[string]bool{"ipRanges": true},
				"ipam":             map[string]any{"type": "host-local", "dataDir": n.ipamDir()},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
				"snat":         true,
				"table":        n.PortmapTable,
			},
		},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	return append(b, '\n')
}

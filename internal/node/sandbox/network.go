package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"quartet.dev/quartet/internal/datadir"
)

// Network is the pod network of one data dir: every host-global name and
// range in it is derived from the data dir, so clusters side by side on one
// machine do not meet.
type Network struct {
	DataDir string
	// ID is a short hash of the data dir's absolute path.
	ID string
	// Bridge is the Linux bridge every pod's veth is attached to.
	Bridge string
	// ClusterCIDR is the range node-ipam carves a /24 per node from.
	ClusterCIDR *net.IPNet
	// HostIP is an address of the host on the bridge, outside every node's
	// subnet in practice (the last usable address of ClusterCIDR): cluster
	// DNS listens there, so pods reach it without a Service route.
	HostIP net.IP
	// Table is the nftables table (family ip) of the egress masquerade;
	// PortmapTable is the one of the host ports (written by the portmap
	// plugin, named in the default conflist).
	Table, PortmapTable string
}

// legacyClusterCIDR is what every data dir used before pod networks were
// per data dir; a cluster created then keeps it (its Nodes hold podCIDRs
// from it).
const legacyClusterCIDR = "10.128.0.0/12"

// clusterCIDRCandidates are the /12 ranges a data dir may get: the upper
// half of 10/8, then the shared address space 100.64.0.0/10.
func clusterCIDRCandidates() []string {
	var out []string
	for i := 0; i < 8; i++ {
		out = append(out, fmt.Sprintf("10.%d.0.0/12", 128+16*i))
	}
	for i := 0; i < 4; i++ {
		out = append(out, fmt.Sprintf("100.%d.0.0/12", 64+16*i))
	}
	return out
}

func (n *Network) dir(parts ...string) string {
	return filepath.Join(append([]string{datadir.Dir(n.DataDir).Network()}, parts...)...)
}

// NetNSDir is where the pods' namespace files are bind-mounted.
func (n *Network) NetNSDir() string { return datadir.Dir(n.DataDir).NetNSDir() }

// ConfDir is the CNI configuration directory; the first .conflist in it
// (by name) is the pod network.
func (n *Network) ConfDir() string { return n.dir("cni", "net.d") }

// BinDir holds the built-in plugins (links to the quartet binary).
func (n *Network) BinDir() string { return n.dir("cni", "bin") }

func (n *Network) cacheDir() string { return n.dir("cni", "cache") }
func (n *Network) ipamDir() string  { return n.dir("cni", "ipam") }

// Plan returns the data dir's pod network: the recorded cluster CIDR, or a
// new one (the first candidate, starting from the data dir's hash, that no
// route or address of this machine overlaps), recorded for next time.
// A data dir that already holds a cluster but no record keeps the range all
// clusters used before.
func Plan(dataDir string) (*Network, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	id := hex.EncodeToString(sum[:4])
	n := &Network{DataDir: abs, ID: id, Bridge: "qt" + id, Table: "quartet-" + id, PortmapTable: "quartet-" + id + "-hostport"}
	record := n.dir("cluster-cidr")
	cidr := ""
	if b, err := os.ReadFile(record); err == nil {
		cidr = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if cidr == "" {
		if _, err := os.Stat(datadir.Dir(abs).Kubeconfig()); err == nil {
			cidr = legacyClusterCIDR
		} else {
			cands := clusterCIDRCandidates()
			start := int(sum[4]) % len(cands)
			for i := range cands {
				c := cands[(start+i)%len(cands)]
				_, ipn, _ := net.ParseCIDR(c)
				if owner := overlappingOwner(ipn, ""); owner == "" {
					cidr = c
					break
				}
			}
			if cidr == "" {
				return nil, fmt.Errorf("pod network: every candidate range (%s) overlaps a route or address of this machine; stop another quartet or free one", strings.Join(cands, ", "))
			}
		}
		if err := os.MkdirAll(n.dir(), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(record, []byte(cidr+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	_, ipn, err := net.ParseCIDR(cidr)
	if err != nil || ipn.IP.To4() == nil {
		return nil, fmt.Errorf("pod network: %s holds %q, not an IPv4 CIDR", record, cidr)
	}
	n.ClusterCIDR = ipn
	n.HostIP = lastUsable(ipn)
	return n, nil
}

// lastUsable is the address before the broadcast address of an IPv4 range.
func lastUsable(ipn *net.IPNet) net.IP {
	ip := make(net.IP, 4)
	base := ipn.IP.To4()
	for i := range ip {
		ip[i] = base[i] | ^ipn.Mask[i]
	}
	ip[3]--
	return ip
}

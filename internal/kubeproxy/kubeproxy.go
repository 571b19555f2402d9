package kubeproxy

import (
	"fmt"
	"net"

	"k8s.io/client-go/kubernetes"
)

// DefaultLockPath is the machine-wide lock of the one proxier.
const DefaultLockPath = "/run/lock/quartet-kube-proxy.lock"

// tableName is the nftables table the nftables proxier writes (ip and
// ip6 families); it is fixed by upstream.
const tableName = "kube-proxy"

// Config configures the proxier.
type Config struct {
	Client kubernetes.Interface
	// ClusterCIDR is the pod range: traffic from it is the cluster's own,
	// anything else reaching a Service is masqueraded.
	ClusterCIDR string
	// NodeIP is the address kube-proxy takes as its node's.
	NodeIP net.IP
	// Owner names this cluster (its data dir) in the lock, for the message
	// a second cluster gets.
	Owner string
	// LockPath is the machine-wide lock ("" = DefaultLockPath).
	LockPath string
}

// BusyError is the answer of Start on a machine where another cluster's
// proxier runs.
type BusyError struct{ Owner string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("kube-proxy of this machine is run by the quartet of %s (one per machine: its nftables table has a fixed name)", e.Owner)
}

// Proxy is the running proxier.
type Proxy struct {
	done chan struct{}
}

// Done is closed once the proxier has stopped (its context ended) and its
// table is gone.
func (p *Proxy) Done() <-chan struct{} { return p.done }

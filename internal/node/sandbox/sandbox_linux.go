package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node/sandbox/plugins"
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

// Manager sets up and tears down pod sandboxes of one data dir.
type Manager struct {
	cfg Config
	net *Network
	cni *libcni.CNIConfig
	nft knftables.Interface

	mu       sync.Mutex
	conflist *libcni.NetworkConfigList
	confFile string
	loopback *libcni.NetworkConfigList
	notes    []string
}

// Pod is what a sandbox needs to know of its pod.
type Pod struct {
	UID, Namespace, Name string
	// PodCIDR is the node's spec.podCIDR, the range its pods' addresses
	// come from (passed to IPAM as the ipRanges capability).
	PodCIDR      string
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

// Available reports whether this process can create network namespaces.
func Available() error { return netNSAvailable() }

// New validates cfg; nothing on the host changes until Start.
func New(cfg Config) (*Manager, error) {
	if cfg.Network == nil {
		return nil, errors.New("sandbox: no network")
	}
	if cfg.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Executable = exe
	}
	if cfg.ExtraPluginDirs == nil {
		cfg.ExtraPluginDirs = []string{"/opt/cni/bin"}
	}
	n := cfg.Network
	path := append([]string{n.BinDir()}, cfg.ExtraPluginDirs...)
	return &Manager{
		cfg: cfg,
		net: n,
		cni: libcni.NewCNIConfigWithCacheDir(path, n.cacheDir(), newInProcessExec(n.BinDir())),
	}, nil
}

// Network is the manager's network.
func (m *Manager) Network() *Network { return m.net }

// Notes are what the host lacks for a complete pod network (no nft, no
// br_netfilter), for `quartet up` to print.
func (m *Manager) Notes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.notes...)
}

// ConfFile is the conflist in use.
func (m *Manager) ConfFile() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.confFile
}

// Start removes what an earlier run of this data dir left, then prepares
// the host: plugin links, the default conflist, forwarding, the bridge
// with the host address, and the egress masquerade.
func (m *Manager) Start(ctx context.Context) error {
	n := m.net
	if owner := overlappingOwner(n.ClusterCIDR, n.Bridge); owner != "" {
		return fmt.Errorf("pod network %s (recorded in %s) overlaps %s on this machine: another quartet or network uses it",
			n.ClusterCIDR, n.dir("cluster-cidr"), owner)
	}
	for _, d := range []string{n.BinDir(), n.ConfDir(), n.cacheDir(), n.ipamDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := m.writePlugins(); err != nil {
		return err
	}
	if err := m.writeDefaultConflist(); err != nil {
		return err
	}
	if err := m.loadConflist(); err != nil {
		return err
	}
	if nft, err := nftables(n); err != nil {
		m.notes = append(m.notes, "no egress masquerade for pods ("+err.Error()+")")
	} else {
		m.nft = nft
	}
	m.Sweep(ctx)
	if err := prepareNetNSDir(n.NetNSDir()); err != nil {
		return err
	}
	notes, err := prepareHost()
	if err != nil {
		return err
	}
	m.notes = append(m.notes, notes...)
	if err := ensureHostBridge(n); err != nil {
		return err
	}
	if m.nft != nil {
		if err := ensureMasquerade(ctx, m.nft, n); err != nil {
			return fmt.Errorf("egress masquerade: %w", err)
		}
	}
	return nil
}

// writePlugins links each built-in plugin's name to the quartet binary.
func (m *Manager) writePlugins() error {
	for _, name := range plugins.Names() {
		link := filepath.Join(m.net.BinDir(), name)
		if cur, err := os.Readlink(link); err == nil && cur == m.cfg.Executable {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(m.cfg.Executable, link); err != nil {
			return err
		}
	}
	return nil
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

func (m *Manager) writeDefaultConflist() error {
	return os.WriteFile(filepath.Join(m.net.ConfDir(), DefaultConflist), DefaultConflistJSON(m.net), 0o600)
}

// loadConflist reads the first .conflist of the configuration directory.
func (m *Manager) loadConflist() error {
	entries, err := os.ReadDir(m.net.ConfDir())
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conflist") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("no .conflist in %s", m.net.ConfDir())
	}
	file := filepath.Join(m.net.ConfDir(), names[0])
	list, err := libcni.ConfListFromFile(file)
	if err != nil {
		return fmt.Errorf("CNI configuration %s: %w", file, err)
	}
	lo, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"quartet-loopback","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.conflist, m.confFile, m.loopback = list, file, lo
	m.mu.Unlock()
	return nil
}

func (m *Manager) netnsPath(uid string) string {
	return datadir.Dir(m.net.DataDir).NetNS(uid)
}

func runtimeConf(uid, netns string, p *Pod) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: uid,
		NetNS:       netns,
		IfName:      ifName,
		Args:        [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_UID", uid}},
	}
	if p != nil {
		rt.Args = append(rt.Args, [2]string{"K8S_POD_NAMESPACE", p.Namespace}, [2]string{"K8S_POD_NAME", p.Name},
			[2]string{"K8S_POD_INFRA_CONTAINER_ID", uid})
		caps := map[string]any{}
		if p.PodCIDR != "" {
			caps["ipRanges"] = [][]map[string]string{{{"subnet": p.PodCIDR}}}
		}
		mappings := p.PortMappings
		if mappings == nil {
			mappings = []PortMapping{}
		}
		caps["portMappings"] = mappings
		rt.CapabilityArgs = caps
	}
	return rt
}

// Setup creates the pod's namespace and attaches it to the pod network.
// A sandbox the pod already had is torn down first.
func (m *Manager) Setup(ctx context.Context, p Pod) (*Sandbox, error) {
	if p.UID == "" || strings.ContainsAny(p.UID, "/.") {
		return nil, fmt.Errorf("sandbox: bad pod UID %q", p.UID)
	}
	if p.PodCIDR == "" {
		return nil, errors.New("network is not ready: the node has no podCIDR yet")
	}
	m.mu.Lock()
	list, lo := m.conflist, m.loopback
	m.mu.Unlock()
	if list == nil {
		return nil, errors.New("sandbox: the pod network is not started")
	}
	path := m.netnsPath(p.UID)
	if _, err := os.Lstat(path); err == nil {
		_ = m.Teardown(ctx, p.UID)
	}
	if err := createNetNS(path); err != nil {
		return nil, err
	}
	rt := runtimeConf(p.UID, path, &p)
	if _, err := m.cni.AddNetworkList(ctx, lo, runtimeConf(p.UID, path, nil)); err != nil {
		_ = removeNetNS(path)
		return nil, fmt.Errorf("loopback: %w", err)
	}
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		_ = m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		_ = removeNetNS(path)
		return nil, err
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		_ = m.Teardown(context.WithoutCancel(ctx), p.UID)
		return nil, err
	}
	sb := &Sandbox{NetNSPath: path}
	for _, ipc := range cur.IPs {
		if ipc.Interface != nil && *ipc.Interface < len(cur.Interfaces) && cur.Interfaces[*ipc.Interface].Sandbox == "" {
			continue // an address of the host side
		}
		sb.IPs = append(sb.IPs, ipc.Address.IP)
	}
	if len(sb.IPs) == 0 {
		_ = m.Teardown(context.WithoutCancel(ctx), p.UID)
		return nil, fmt.Errorf("CNI network %q returned no address for the pod", list.Name)
	}
	return sb, nil
}

// Teardown detaches the pod from the network and removes its namespace.
// Tearing down a sandbox that is not there is fine.
func (m *Manager) Teardown(ctx context.Context, uid string) error {
	m.mu.Lock()
	list, lo := m.conflist, m.loopback
	m.mu.Unlock()
	path := m.netnsPath(uid)
	netns := path
	if _, err := os.Lstat(path); err != nil {
		netns = ""
	}
	var errs []error
	if list != nil {
		rt := runtimeConf(uid, netns, nil)
		if _, cached, err := m.cni.GetNetworkListCachedConfig(list, rt); err == nil && cached != nil {
			rt.CapabilityArgs = cached.CapabilityArgs
		}
		if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, err)
		}
		if netns != "" {
			_ = m.cni.DelNetworkList(ctx, lo, runtimeConf(uid, netns, nil))
		}
	}
	if err := removeNetNS(path); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReleaseNode removes the gateway address of a node's pod range from the
// bridge, once the node is gone.
func (m *Manager) ReleaseNode(podCIDR string) error {
	if podCIDR == "" {
		return nil
	}
	return removeGateway(m.net, podCIDR)
}

// Sweep removes every sandbox of this data dir and what the network put on
// the host: it is what Stop does, and what Start does first, after a run
// that was killed.
func (m *Manager) Sweep(ctx context.Context) {
	logger := klog.FromContext(ctx)
	n := m.net
	ids := map[string]bool{}
	entries, _ := os.ReadDir(n.NetNSDir())
	for _, e := range entries {
		ids[e.Name()] = true
	}
	for _, p := range mountsUnder(n.NetNSDir()) {
		ids[filepath.Base(p)] = true
	}
	for id := range ids {
		if err := m.Teardown(ctx, id); err != nil {
			logger.V(2).Info("Tearing down a leftover sandbox", "id", id, "err", err)
		}
		_ = removeNetNS(m.netnsPath(id))
	}
	if len(ids) > 0 {
		logger.Info("Removed pod sandboxes left by an earlier run", "count", len(ids))
	}
	releaseNetNSDir(n.NetNSDir())
	if err := deleteHostBridge(n); err != nil {
		logger.Error(err, "Deleting the pod bridge", "bridge", n.Bridge)
	}
	if m.nft != nil {
		if err := deleteTable(ctx, m.nft); err != nil {
			logger.Error(err, "Deleting the pod network's nftables table", "table", n.Table)
		}
		if pm, err := knftables.New(knftables.IPv4Family, n.PortmapTable); err == nil {
			if err := deleteTable(ctx, pm); err != nil {
				logger.Error(err, "Deleting the host ports' nftables table", "table", n.PortmapTable)
			}
		}
	}
	_ = os.RemoveAll(n.cacheDir())
	_ = os.RemoveAll(n.ipamDir())
	_ = os.MkdirAll(n.cacheDir(), 0o700)
	_ = os.MkdirAll(n.ipamDir(), 0o700)
}

// Stop removes every sandbox and the host's part of the network.
func (m *Manager) Stop(ctx context.Context) { m.Sweep(ctx) }

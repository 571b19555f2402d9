package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node/sandbox/plugins"
)

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
	// hostPorts are the host ports each sandbox maps, by pod UID: every
	// node of the machine shares its ports, so two pods may not map one.
	hostPorts map[string]hostPortOwner
}

// hostPortOwner is a sandbox's pod and its port mappings.
type hostPortOwner struct {
	pod      string // namespace/name
	mappings []PortMapping
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
		cfg:       cfg,
		net:       n,
		cni:       libcni.NewCNIConfigWithCacheDir(path, n.cacheDir(), newInProcessExec(n.BinDir())),
		hostPorts: map[string]hostPortOwner{},
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
	list := m.conflist
	m.mu.Unlock()
	if list == nil {
		return nil, errors.New("sandbox: the pod network is not started")
	}
	if _, err := os.Lstat(m.netnsPath(p.UID)); err == nil {
		_ = m.Teardown(ctx, p.UID)
	}
	if err := m.claimHostPorts(p); err != nil {
		return nil, err
	}
	sb, err := m.setup(ctx, list, p, p.IP)
	if err != nil && p.IP != "" {
		// The earlier address is taken or out of range: any will do.
		sb, err = m.setup(ctx, list, p, "")
	}
	if err != nil {
		m.releaseHostPorts(p.UID)
		return nil, err
	}
	return sb, nil
}

// setup creates the namespace and runs the loopback and the pod network's
// ADD; on failure it leaves nothing behind.
func (m *Manager) setup(ctx context.Context, list *libcni.NetworkConfigList, p Pod, ip string) (*Sandbox, error) {
	m.mu.Lock()
	lo := m.loopback
	m.mu.Unlock()
	path := m.netnsPath(p.UID)
	if err := createNetNS(path); err != nil {
		return nil, err
	}
	rt := runtimeConf(p.UID, path, &p)
	if ip != "" {
		rt.Args = append(rt.Args, [2]string{"IP", ip})
	}
	if _, err := m.cni.AddNetworkList(ctx, lo, runtimeConf(p.UID, path, nil)); err != nil {
		_ = removeNetNS(path)
		return nil, fmt.Errorf("loopback: %w", err)
	}
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		_ = m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		_ = removeNetNS(path)
		return nil, fmt.Errorf("CNI network %q: %w", list.Name, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		_ = m.teardown(context.WithoutCancel(ctx), p.UID)
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
		_ = m.teardown(context.WithoutCancel(ctx), p.UID)
		return nil, fmt.Errorf("CNI network %q returned no address for the pod", list.Name)
	}
	return sb, nil
}

// claimHostPorts reserves the pod's host ports, or says who has one: a pod
// of any node of this machine (they all share its ports), or a program
// listening on it.
func (m *Manager) claimHostPorts(p Pod) error {
	if len(p.PortMappings) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, o := range m.hostPorts {
		if uid == p.UID {
			continue
		}
		for _, want := range p.PortMappings {
			for _, have := range o.mappings {
				if hostPortsOverlap(want, have) {
					return fmt.Errorf("host port %s is already mapped to pod %s (every quartet node shares this machine's ports)", describePort(want), o.pod)
				}
			}
		}
	}
	for _, want := range p.PortMappings {
		if err := probeHostPort(want); err != nil {
			return err
		}
	}
	m.hostPorts[p.UID] = hostPortOwner{pod: p.Namespace + "/" + p.Name, mappings: append([]PortMapping(nil), p.PortMappings...)}
	return nil
}

func (m *Manager) releaseHostPorts(uid string) {
	m.mu.Lock()
	delete(m.hostPorts, uid)
	m.mu.Unlock()
}

// hostPortsOverlap reports whether two mappings claim the same host port:
// same protocol and port, and the same host address or a wildcard.
func hostPortsOverlap(a, b PortMapping) bool {
	if a.HostPort != b.HostPort || !strings.EqualFold(protocolOf(a), protocolOf(b)) {
		return false
	}
	wild := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return wild(a.HostIP) || wild(b.HostIP) || net.ParseIP(a.HostIP).Equal(net.ParseIP(b.HostIP))
}

func protocolOf(p PortMapping) string {
	if p.Protocol == "" {
		return "TCP"
	}
	return strings.ToUpper(p.Protocol)
}

func describePort(p PortMapping) string {
	s := fmt.Sprintf("%d/%s", p.HostPort, protocolOf(p))
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	return s
}

// probeHostPort fails when a program of this machine listens on the host
// port: the mapping would take its traffic away from it.
func probeHostPort(p PortMapping) error {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
	var err error
	switch protocolOf(p) {
	case "TCP":
		var ln net.Listener
		if ln, err = net.Listen("tcp4", addr); err == nil {
			ln.Close()
		}
	case "UDP":
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp4", addr); err == nil {
			pc.Close()
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("host port %s is in use by a program on this machine", describePort(p))
	}
	return nil
}

// Teardown detaches the pod from the network and removes its namespace.
// Tearing down a sandbox that is not there is fine.
func (m *Manager) Teardown(ctx context.Context, uid string) error {
	err := m.teardown(ctx, uid)
	m.releaseHostPorts(uid)
	return err
}

func (m *Manager) teardown(ctx context.Context, uid string) error {
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

// sweepWorkers is how many sandboxes Sweep tears down at once.
const sweepWorkers = 16

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
	// Sandboxes are torn down several at once: a stop with a thousand
	// pods must fit in the component's stop timeout. With quartet's own
	// plugins nothing of a pod outlives what is removed whole (its veth,
	// the bridge, the tables, the address and cache files), so the
	// plugins' DEL, a few milliseconds each, is skipped; another conflist's
	// plugins get their DEL. The veths go first, in one batch, while their
	// namespaces live: once a namespace's file is removed the kernel
	// destroys it in the background, holding the lock every link change
	// takes, which made deleting the veths after it three times slower.
	builtin := filepath.Base(m.ConfFile()) == DefaultConflist
	if builtin {
		deleteBridgePorts(n)
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range sweepWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if builtin {
					m.releaseHostPorts(id)
				} else if err := m.Teardown(ctx, id); err != nil {
					logger.V(2).Info("Tearing down a leftover sandbox", "id", id, "err", err)
				}
				_ = removeNetNS(m.netnsPath(id))
			}
		}()
	}
	for id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
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

package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// needRoot skips tests that change the host's network.
func needRoot(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
}

// subnet returns the i-th /24 of the network's cluster range.
func subnet(n *Network, i int) string {
	ip := n.ClusterCIDR.IP.To4()
	return fmt.Sprintf("%d.%d.%d.0/24", ip[0], ip[1], int(ip[2])+i)
}

func startManager(t testing.TB, dataDir string) *Manager {
	t.Helper()
	n, err := Plan(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Network: n})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	return m
}

// serveIn starts a TCP echo-once server in the namespace at path.
func serveIn(t *testing.T, path string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", ":8080")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello from "+path)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialFrom connects from the namespace at path ("" = the host) and reads
// the greeting.
func dialFrom(path, addr string) (string, error) {
	var out string
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		out = string(b)
		return err
	}
	if path == "" {
		return out, dial()
	}
	err := ns.WithNetNSPath(path, func(ns.NetNS) error { return dial() })
	return out, err
}

func hostState(t *testing.T, n *Network) (links, routes, tables string) {
	t.Helper()
	run := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Logf("%v: %v: %s", args, err, out)
		}
		return string(out)
	}
	return run("ip", "-o", "link"), run("ip", "route", "show", "table", "main"), run("nft", "list", "tables")
}

func TestSandboxesReachEachOtherAndCleanUp(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	m := startManager(t, dir)
	n := m.Network()
	t.Cleanup(func() { m.Stop(ctx) })

	pods := []Pod{
		{UID: "uid-a", Namespace: "default", Name: "a", PodCIDR: subnet(n, 1)},
		{UID: "uid-b", Namespace: "default", Name: "b", PodCIDR: subnet(n, 1)},
		{UID: "uid-c", Namespace: "default", Name: "c", PodCIDR: subnet(n, 2)},
	}
	sbs := map[string]*Sandbox{}
	for _, p := range pods {
		sb, err := m.Setup(ctx, p)
		if err != nil {
			t.Fatalf("setup %s: %v", p.Name, err)
		}
		_, want, _ := net.ParseCIDR(p.PodCIDR)
		if len(sb.IPs) != 1 || !want.Contains(sb.IPs[0]) {
			t.Fatalf("pod %s got addresses %v, want one in %s", p.Name, sb.IPs, p.PodCIDR)
		}
		if sb.NetNSPath != filepath.Join(dir, "run", "netns", p.UID) {
			t.Fatalf("netns path %s", sb.NetNSPath)
		}
		sbs[p.Name] = sb
		serveIn(t, sb.NetNSPath)
	}
	addr := func(name string) string { return net.JoinHostPort(sbs[name].IPs[0].String(), "8080") }
	for _, c := range []struct{ from, to string }{{"", "a"}, {"", "c"}, {"a", "b"}, {"a", "c"}, {"c", "b"}} {
		from := ""
		if c.from != "" {
			from = sbs[c.from].NetNSPath
		}
		got, err := dialFrom(from, addr(c.to))
		if err != nil || !strings.Contains(got, sbs[c.to].NetNSPath) {
			t.Errorf("%q -> %s: %q, %v", c.from, c.to, got, err)
		}
	}
	// The host address on the bridge is reachable from pods.
	hostLn, err := net.Listen("tcp", net.JoinHostPort(n.HostIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go func() {
		c, err := hostLn.Accept()
		if err == nil {
			_, _ = io.WriteString(c, "host")
			c.Close()
		}
	}()
	if got, err := dialFrom(sbs["c"].NetNSPath, hostLn.Addr().String()); err != nil || got != "host" {
		t.Errorf("pod -> host address: %q, %v", got, err)
	}

	if err := m.Teardown(ctx, "uid-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sbs["a"].NetNSPath); !os.IsNotExist(err) {
		t.Errorf("netns file of a torn-down pod: %v", err)
	}
	// The address is free again: a pod that reuses it sets up fine.
	if err := m.ReleaseNode(subnet(n, 2)); err != nil {
		t.Fatal(err)
	}
	m.Stop(ctx)
	links, routes, tables := hostState(t, n)
	if strings.Contains(links, n.Bridge) {
		t.Errorf("bridge %s still there:\n%s", n.Bridge, links)
	}
	if strings.Contains(routes, n.Bridge) {
		t.Errorf("routes on %s still there:\n%s", n.Bridge, routes)
	}
	if strings.Contains(tables, n.Table) {
		t.Errorf("table %s still there:\n%s", n.Table, tables)
	}
	if left := mountsUnder(n.NetNSDir()); len(left) > 0 {
		t.Errorf("netns mounts left: %v", left)
	}
}

func TestStartRemovesWhatACrashedRunLeft(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	m := startManager(t, dir)
	n := m.Network()
	sb, err := m.Setup(ctx, Pod{UID: "uid-x", Namespace: "default", Name: "x", PodCIDR: subnet(n, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// A killed run leaves its manager's state behind; a new one starts.
	m2 := startManager(t, dir)
	defer m2.Stop(ctx)
	if _, err := os.Stat(sb.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("leftover netns file: %v", err)
	}
	links, _, _ := hostState(t, n)
	if n := strings.Count(links, "master "+n.Bridge); n != 0 {
		t.Errorf("%d veths still on the bridge:\n%s", n, links)
	}
	// The address the crashed run had reserved is free again.
	sb2, err := m2.Setup(ctx, Pod{UID: "uid-y", Namespace: "default", Name: "y", PodCIDR: subnet(n, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if !sb2.IPs[0].Equal(sb.IPs[0]) {
		t.Logf("new address %s (old %s)", sb2.IPs[0], sb.IPs[0])
	}
}

func TestExhaustedRangeIsAnError(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m := startManager(t, t.TempDir())
	defer m.Stop(ctx)
	ip := m.Network().ClusterCIDR.IP.To4()
	small := fmt.Sprintf("%d.%d.%d.0/30", ip[0], ip[1], int(ip[2])+3) // one usable address besides the gateway
	if _, err := m.Setup(ctx, Pod{UID: "p1", Name: "p1", Namespace: "d", PodCIDR: small}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Setup(ctx, Pod{UID: "p2", Name: "p2", Namespace: "d", PodCIDR: small})
	if err == nil || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Fatalf("second pod in a full range: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(m.Network().NetNSDir(), "p2")); !os.IsNotExist(statErr) {
		t.Errorf("failed sandbox left its netns file: %v", statErr)
	}
}

func TestHostPortMaps(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed")
	}
	ctx := context.Background()
	m := startManager(t, t.TempDir())
	n := m.Network()
	// A free port on the host.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	sb, err := m.Setup(ctx, Pod{UID: "uid-hp", Namespace: "default", Name: "hp", PodCIDR: subnet(n, 1),
		PortMappings: []PortMapping{{HostPort: int32(hostPort), ContainerPort: 8080, Protocol: "TCP"}}})
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, sb.NetNSPath)
	for _, host := range []string{"127.0.0.1", n.HostIP.String()} {
		got, err := dialFrom("", net.JoinHostPort(host, fmt.Sprint(hostPort)))
		if err != nil || !strings.Contains(got, sb.NetNSPath) {
			t.Errorf("host port on %s: %q, %v", host, got, err)
		}
	}
	if err := m.Teardown(ctx, "uid-hp"); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("nft", "list", "table", "ip", n.PortmapTable).CombinedOutput()
	if strings.Contains(string(out), "uid-hp") {
		t.Errorf("host port rules left after teardown:\n%s", out)
	}
}

func TestEarlierAddressIsKeptWhenFree(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m := startManager(t, t.TempDir())
	n := m.Network()
	ip := n.ClusterCIDR.IP.To4()
	want := fmt.Sprintf("%d.%d.%d.77", ip[0], ip[1], int(ip[2])+1)
	sb, err := m.Setup(ctx, Pod{UID: "u1", Namespace: "d", Name: "p1", PodCIDR: subnet(n, 1), IP: want})
	if err != nil {
		t.Fatal(err)
	}
	if sb.IPs[0].String() != want {
		t.Errorf("got %s, want the earlier address %s", sb.IPs[0], want)
	}
	// Taken: any other address will do.
	sb2, err := m.Setup(ctx, Pod{UID: "u2", Namespace: "d", Name: "p2", PodCIDR: subnet(n, 1), IP: want})
	if err != nil {
		t.Fatal(err)
	}
	if sb2.IPs[0].String() == want {
		t.Errorf("two pods got %s", want)
	}
}

func TestHostPortsAreNotSharedOrTaken(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m := startManager(t, t.TempDir())
	n := m.Network()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := int32(ln.Addr().(*net.TCPAddr).Port)
	_, err = m.Setup(ctx, Pod{UID: "u0", Namespace: "d", Name: "p0", PodCIDR: subnet(n, 1),
		PortMappings: []PortMapping{{HostPort: busy, ContainerPort: 80, Protocol: "tcp"}}})
	if err == nil || !strings.Contains(err.Error(), "in use by a program on this machine") {
		t.Fatalf("host port a program listens on: %v", err)
	}
	free := busy + 1
	for isBusy(free) {
		free++
	}
	if _, err := m.Setup(ctx, Pod{UID: "u1", Namespace: "d", Name: "p1", PodCIDR: subnet(n, 1),
		PortMappings: []PortMapping{{HostPort: free, ContainerPort: 80, Protocol: "tcp"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = m.Setup(ctx, Pod{UID: "u2", Namespace: "d", Name: "p2", PodCIDR: subnet(n, 2),
		PortMappings: []PortMapping{{HostPort: free, ContainerPort: 81, Protocol: "TCP", HostIP: "127.0.0.1"}}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("host port 127.0.0.1:%d/TCP is already mapped to pod d/p1", free)) {
		t.Fatalf("host port of another pod: %v", err)
	}
	// Another protocol is another port.
	if _, err := m.Setup(ctx, Pod{UID: "u3", Namespace: "d", Name: "p3", PodCIDR: subnet(n, 2),
		PortMappings: []PortMapping{{HostPort: free, ContainerPort: 81, Protocol: "udp"}}}); err != nil {
		t.Fatal(err)
	}
	// Once the first pod is gone, its port is free again.
	if err := m.Teardown(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(ctx, Pod{UID: "u2", Namespace: "d", Name: "p2", PodCIDR: subnet(n, 2),
		PortMappings: []PortMapping{{HostPort: free, ContainerPort: 81, Protocol: "TCP", HostIP: "127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
}

func isBusy(port int32) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return true
	}
	ln.Close()
	return false
}

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// overlappingOwner describes a route or address of this machine that
// overlaps ipn, ignoring those on the interface named own; "" when none.
func overlappingOwner(ipn *net.IPNet, own string) string {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return ""
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: syscall.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err == nil {
		for _, r := range routes {
			if r.Dst == nil || names[r.LinkIndex] == own {
				continue
			}
			if ones, _ := r.Dst.Mask.Size(); ones == 0 {
				continue
			}
			if r.Dst.Contains(ipn.IP) || ipn.Contains(r.Dst.IP) {
				return fmt.Sprintf("route %s dev %s", r.Dst, names[r.LinkIndex])
			}
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err == nil {
		for _, a := range addrs {
			if names[a.LinkIndex] != own && ipn.Contains(a.IP) {
				return fmt.Sprintf("address %s on %s", a.IPNet, names[a.LinkIndex])
			}
		}
	}
	return ""
}

// writeSysctl writes a /proc/sys value.
func writeSysctl(name, value string) error {
	return os.WriteFile("/proc/sys/"+name, []byte(value), 0o644)
}

// prepareHost turns on what routing between pods needs. Both settings are
// host-global and stay on after quartet stops, as with Docker and the kubelet:
// another program may rely on them by then.
func prepareHost() (notes []string, err error) {
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return nil, fmt.Errorf("enabling net.ipv4.ip_forward: %w", err)
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		notes = append(notes, "br_netfilter is not loaded (modprobe br_netfilter): a pod reaching a Service whose endpoint is on its own node may get no answer")
	} else if err := writeSysctl("net/bridge/bridge-nf-call-iptables", "1"); err != nil {
		return nil, fmt.Errorf("enabling net.bridge.bridge-nf-call-iptables: %w", err)
	}
	return notes, nil
}

// ensureHostBridge creates the network's bridge with the host's address.
func ensureHostBridge(n *Network) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = n.Bridge
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("creating bridge %s: %w", n.Bridge, err)
	}
	br, err := netlinksafe.LinkByName(n.Bridge)
	if err != nil {
		return err
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is not a bridge", n.Bridge)
	}
	_ = writeSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_ra", n.Bridge), "0")
	// Host ports mapped on 127.0.0.1 are rewritten to pod addresses and
	// leave through the bridge with a loopback source until masqueraded.
	_ = writeSysctl(fmt.Sprintf("net/ipv4/conf/%s/route_localnet", n.Bridge), "1")
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.HostIP, Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrAdd(br, addr); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("adding %s to %s: %w", n.HostIP, n.Bridge, err)
	}
	return netlink.LinkSetUp(br)
}

// deleteHostBridge removes the bridge (and with it every address and route
// on it). A bridge that is not there is fine.
func deleteHostBridge(n *Network) error {
	br, err := netlinksafe.LinkByName(n.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return netlink.LinkDel(br)
}

// deleteBridgePorts deletes every link on the bridge: the pods' host-side
// veths, each taking its peer in the pod's namespace with it.
//
// One by one, a deletion waits for the kernel's RCU grace periods: a few
// milliseconds each, about 5 s for 1,000. Instead each port is put in the
// network's link group (a cheap change) and the group is deleted in one
// request, which the kernel unregisters as one batch.
func deleteBridgePorts(n *Network) {
	br, err := netlinksafe.LinkByName(n.Bridge)
	if err != nil {
		return
	}
	links, err := netlinksafe.LinkList()
	if err != nil {
		return
	}
	group := n.linkGroup()
	var ports []netlink.Link
	for _, l := range links {
		if l.Attrs().MasterIndex != br.Attrs().Index {
			continue
		}
		if err := netlink.LinkSetGroup(l, int(group)); err != nil {
			_ = netlink.LinkDel(l)
			continue
		}
		ports = append(ports, l)
	}
	if len(ports) == 0 {
		return
	}
	if err := deleteLinkGroup(group); err != nil {
		for _, l := range ports {
			_ = netlink.LinkDel(l)
		}
	}
}

// linkGroup is the network's link group number (never 0, every link's
// default group), from its ID.
func (n *Network) linkGroup() uint32 {
	g, err := strconv.ParseUint(n.ID, 16, 32)
	if err != nil || g == 0 {
		return 1
	}
	return uint32(g)
}

// deleteLinkGroup deletes every link of the host's namespace in group, in
// one request (as `ip link delete group N`).
func deleteLinkGroup(group uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// removeGateway drops the gateway address of a node's subnet from the bridge.
func removeGateway(n *Network, podCIDR string) error {
	_, ipn, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return err
	}
	br, err := netlinksafe.LinkByName(n.Bridge)
	if err != nil {
		return nil
	}
	addrs, err := netlinksafe.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if ipn.Contains(a.IP) && !a.IP.Equal(n.HostIP) {
			if err := netlink.AddrDel(br, &a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
				return err
			}
		}
	}
	return nil
}

// nftables returns an interface to the network's own table, or an error
// saying why there is none (no nft program, no nf_tables).
func nftables(n *Network) (knftables.Interface, error) {
	return knftables.New(knftables.IPv4Family, n.Table)
}

// ensureMasquerade (re)writes the network's table: traffic from pods to
// anything outside the cluster network leaves with the host's address.
func ensureMasquerade(ctx context.Context, nft knftables.Interface, n *Network) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("quartet pod network of " + n.DataDir)})
	tx.Add(&knftables.Chain{Name: "postrouting", Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority)})
	tx.Flush(&knftables.Chain{Name: "postrouting"})
	cidr := n.ClusterCIDR.String()
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: knftables.Concat(
		"ip saddr", cidr, "ip daddr !=", cidr, "oifname !=", n.Bridge, "masquerade"),
		Comment: knftables.PtrTo("egress from pods")})
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: knftables.Concat(
		"ip saddr 127.0.0.0/8 oifname", n.Bridge, "masquerade"),
		Comment: knftables.PtrTo("host ports reached on a loopback address")})
	return nft.Run(ctx, tx)
}

// deleteTable removes the network's table when it exists.
func deleteTable(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	return nft.Run(ctx, tx)
}

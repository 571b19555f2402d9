package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
)

func init() {
	register(&Plugin{Name: "bridge", Add: bridgeAdd, Del: bridgeDel, Check: bridgeCheck,
		About: "quartet's bridge: a veth pair per sandbox, the host end on a Linux bridge that is the gateway"})
}

// bridgeConf is the reference bridge plugin's configuration; the options
// quartet's bridge does not implement are decoded only to be refused.
type bridgeConf struct {
	types.NetConf
	Bridge           string  `json:"bridge"`
	IsGateway        bool    `json:"isGateway"`
	IsDefaultGateway bool    `json:"isDefaultGateway"`
	ForceAddress     bool    `json:"forceAddress"`
	IPMasq           bool    `json:"ipMasq"`
	IPMasqBackend    *string `json:"ipMasqBackend,omitempty"`
	MTU              int     `json:"mtu"`
	HairpinMode      bool    `json:"hairpinMode"`
	PromiscMode      bool    `json:"promiscMode"`
	PortIsolation    bool    `json:"portIsolation"`

	Vlan                      int             `json:"vlan"`
	VlanTrunk                 json.RawMessage `json:"vlanTrunk"`
	MacSpoofChk               bool            `json:"macspoofchk"`
	EnableDad                 bool            `json:"enabledad"`
	DisableContainerInterface bool            `json:"disableContainerInterface"`
}

func loadBridgeConf(data []byte) (*bridgeConf, error) {
	c := &bridgeConf{Bridge: "cni0"}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("bridge: decoding configuration: %w", err)
	}
	var unsupported []string
	if c.Vlan != 0 {
		unsupported = append(unsupported, "vlan")
	}
	if len(c.VlanTrunk) > 0 && string(c.VlanTrunk) != "null" {
		unsupported = append(unsupported, "vlanTrunk")
	}
	if c.MacSpoofChk {
		unsupported = append(unsupported, "macspoofchk")
	}
	if c.EnableDad {
		unsupported = append(unsupported, "enabledad")
	}
	if c.DisableContainerInterface {
		unsupported = append(unsupported, "disableContainerInterface")
	}
	if len(unsupported) > 0 {
		return nil, fmt.Errorf("bridge: %s not supported by quartet's built-in bridge plugin (install the reference plugins and point the conflist at them)", strings.Join(unsupported, ", "))
	}
	if err := version.ParsePrevResult(&c.NetConf); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if c.IsDefaultGateway {
		c.IsGateway = true
	}
	if c.HairpinMode && c.PromiscMode {
		return nil, errors.New("bridge: hairpinMode and promiscMode cannot both be set")
	}
	if c.IPAM.Type == "" {
		return nil, errors.New("bridge: an ipam section is required by quartet's built-in bridge plugin")
	}
	return c, nil
}

// ensureBridge creates the bridge when it is missing and sets it up.
func ensureBridge(c *bridgeConf) (*netlink.Bridge, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = c.Bridge
	attrs.MTU = c.MTU
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("creating bridge %q: %w", c.Bridge, err)
	}
	l, err := netlinksafe.LinkByName(c.Bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge %q: %w", c.Bridge, err)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%q already exists and is not a bridge", c.Bridge)
	}
	if c.PromiscMode {
		if err := netlink.SetPromiscOn(br); err != nil {
			return nil, fmt.Errorf("bridge %q: promiscuous mode: %w", c.Bridge, err)
		}
	}
	_, _ = sysctl.Sysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_ra", c.Bridge), "0")
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bridge %q: %w", c.Bridge, err)
	}
	return br, nil
}

// ensureGatewayAddr puts gw on the bridge. Several subnets (one per node)
// may share a bridge; an address in the same subnet that differs is an
// error unless forceAddress.
func ensureGatewayAddr(br netlink.Link, gw *net.IPNet, force bool) error {
	family := netlink.FAMILY_V4
	if gw.IP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlinksafe.AddrList(br, family)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.IPNet.String() == gw.String() {
			return nil
		}
		if a.Contains(gw.IP) || gw.Contains(a.IP) {
			if !force {
				return fmt.Errorf("%q already has an IP address %s in the subnet of %s", br.Attrs().Name, a.IPNet, gw)
			}
			if err := netlink.AddrDel(br, &a); err != nil {
				return err
			}
		}
	}
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("adding %s to %q: %w", gw, br.Attrs().Name, err)
	}
	return nil
}

// delegateIPAM runs the configuration's IPAM plugin: the built-in one in
// this process, any other through CNI_PATH.
func delegateIPAM(ctx context.Context, command string, args *skel.CmdArgs, ipamType string) (types.Result, error) {
	if p := Lookup(ipamType); p != nil && ipamType == "host-local" {
		switch command {
		case "ADD":
			return p.Add(ctx, args)
		case "DEL":
			return nil, p.Del(ctx, args)
		default:
			return nil, p.Check(ctx, args)
		}
	}
	path, err := invoke.FindInPath(ipamType, filepath.SplitList(args.Path))
	if err != nil {
		return nil, err
	}
	iargs := &invoke.Args{Command: command, ContainerID: args.ContainerID, NetNS: args.Netns, IfName: args.IfName, PluginArgsStr: args.Args, Path: args.Path}
	if command == "ADD" {
		return invoke.ExecPluginWithResult(ctx, path, args.StdinData, iargs, nil)
	}
	return nil, invoke.ExecPluginWithoutResult(ctx, path, args.StdinData, iargs, nil)
}

// bridgeAdd creates the veth pair, asks IPAM for addresses, configures the
// sandbox's interface and routes and the bridge's gateway addresses.
func bridgeAdd(ctx context.Context, args *skel.CmdArgs) (_ types.Result, err error) {
	c, err := loadBridgeConf(args.StdinData)
	if err != nil {
		return nil, err
	}
	br, err := ensureBridge(c)
	if err != nil {
		return nil, err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return nil, fmt.Errorf("opening netns %q: %w", args.Netns, err)
	}
	defer netns.Close()

	hostIf := &current.Interface{}
	contIf := &current.Interface{Sandbox: args.Netns}
	if err := netns.Do(func(hostNS ns.NetNS) error {
		hostVeth, contVeth, err := ip.SetupVeth(args.IfName, c.MTU, "", hostNS)
		if err != nil {
			return err
		}
		hostIf.Name, contIf.Name, contIf.Mac = hostVeth.Name, contVeth.Name, contVeth.HardwareAddr.String()
		return nil
	}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error { return ip.DelLinkByName(args.IfName) })
		}
	}()
	hostVeth, err := netlinksafe.LinkByName(hostIf.Name)
	if err != nil {
		return nil, err
	}
	if err := netlink.LinkSetMaster(hostVeth, br); err != nil {
		return nil, fmt.Errorf("attaching %q to bridge %q: %w", hostIf.Name, c.Bridge, err)
	}
	if err := netlink.LinkSetHairpin(hostVeth, c.HairpinMode); err != nil {
		return nil, fmt.Errorf("hairpin mode on %q: %w", hostIf.Name, err)
	}
	if c.PortIsolation {
		if err := netlink.LinkSetIsolated(hostVeth, true); err != nil {
			return nil, fmt.Errorf("port isolation on %q: %w", hostIf.Name, err)
		}
	}

	ipamRes, err := delegateIPAM(ctx, "ADD", args, c.IPAM.Type)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_, _ = delegateIPAM(ctx, "DEL", args, c.IPAM.Type)
		}
	}()
	res, err := asCurrent(ipamRes)
	if err != nil {
		return nil, err
	}
	if len(res.IPs) == 0 {
		return nil, errors.New("IPAM plugin returned no address")
	}
	res.CNIVersion = current.ImplementedSpecVersion
	res.Interfaces = []*current.Interface{{Name: c.Bridge}, hostIf, contIf}
	var gateways []*net.IPNet
	defaults := map[bool]bool{} // family (v4?) -> default route present
	for _, r := range res.Routes {
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			defaults[r.Dst.IP.To4() != nil] = true
		}
	}
	for _, ipc := range res.IPs {
		ipc.Interface = current.Int(2)
		if ipc.Gateway == nil && c.IsGateway {
			ipc.Gateway = ip.NextIP(ipc.Address.IP.Mask(ipc.Address.Mask))
		}
		if ipc.Gateway == nil {
			continue
		}
		gateways = append(gateways, &net.IPNet{IP: ipc.Gateway, Mask: ipc.Address.Mask})
		v4 := ipc.Address.IP.To4() != nil
		if c.IsDefaultGateway && !defaults[v4] {
			dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
			if !v4 {
				dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: ipc.Gateway})
			defaults[v4] = true
		}
	}
	if err := netns.Do(func(ns.NetNS) error {
		_, _ = sysctl.Sysctl(fmt.Sprintf("net/ipv4/conf/%s/arp_notify", args.IfName), "1")
		_, _ = sysctl.Sysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_dad", args.IfName), "0")
		return ipam.ConfigureIface(args.IfName, res)
	}); err != nil {
		return nil, err
	}
	if c.IsGateway {
		for _, gw := range gateways {
			if err := ensureGatewayAddr(br, gw, c.ForceAddress); err != nil {
				return nil, err
			}
			if gw.IP.To4() != nil {
				err = ip.EnableIP4Forward()
			} else {
				err = ip.EnableIP6Forward()
			}
			if err != nil {
				return nil, fmt.Errorf("enabling forwarding: %w", err)
			}
		}
	}
	if c.IPMasq {
		var nets []*net.IPNet
		for _, ipc := range res.IPs {
			nets = append(nets, &ipc.Address)
		}
		if err := ip.SetupIPMasqForNetworks(c.IPMasqBackend, nets, c.Name, args.IfName, args.ContainerID); err != nil {
			return nil, err
		}
	}
	// A new bridge port forwards at once (the bridge runs no STP), but
	// its operational state follows the peer: wait until it is up.
	for i := 0; i < 100; i++ {
		l, err := netlinksafe.LinkByName(hostIf.Name)
		if err != nil {
			return nil, err
		}
		hostIf.Mac = l.Attrs().HardwareAddr.String()
		if l.Attrs().OperState == netlink.OperUp {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l, err := netlinksafe.LinkByName(c.Bridge); err == nil {
		res.Interfaces[0].Mac = l.Attrs().HardwareAddr.String()
	}
	if c.DNS.Nameservers != nil || c.DNS.Search != nil || c.DNS.Domain != "" || c.DNS.Options != nil {
		res.DNS = c.DNS
	}
	return res, nil
}

// bridgeDel removes the sandbox's interface (which removes the pair) and
// releases its addresses; a namespace or interface already gone is fine.
func bridgeDel(ctx context.Context, args *skel.CmdArgs) error {
	c, err := loadBridgeConf(args.StdinData)
	if err != nil {
		return err
	}
	var nets []*net.IPNet
	if args.Netns != "" {
		err := ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
			var err error
			nets, err = ip.DelLinkByNameAddr(args.IfName)
			if errors.Is(err, ip.ErrLinkNotFound) {
				return nil
			}
			return err
		})
		var gone ns.NSPathNotExistErr
		if err != nil && !errors.As(err, &gone) {
			return err
		}
	}
	if _, err := delegateIPAM(ctx, "DEL", args, c.IPAM.Type); err != nil {
		return err
	}
	if c.IPMasq && len(nets) > 0 {
		return ip.TeardownIPMasqForNetworks(nets, c.Name, args.IfName, args.ContainerID)
	}
	return nil
}

// bridgeCheck verifies that the sandbox's interface exists and has the
// addresses of the previous result.
func bridgeCheck(ctx context.Context, args *skel.CmdArgs) error {
	c, err := loadBridgeConf(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := delegateIPAM(ctx, "CHECK", args, c.IPAM.Type); err != nil {
		return err
	}
	if c.PrevResult == nil {
		return errors.New("bridge: CHECK needs a prevResult")
	}
	prev, err := asCurrent(c.PrevResult)
	if err != nil {
		return err
	}
	if _, err := netlinksafe.LinkByName(c.Bridge); err != nil {
		return fmt.Errorf("bridge %q: %w", c.Bridge, err)
	}
	return ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		return ip.ValidateExpectedInterfaceIPs(args.IfName, prev.IPs)
	})
}

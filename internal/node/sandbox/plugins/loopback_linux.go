package plugins

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

func init() {
	register(&Plugin{Name: "loopback", Add: loopbackAdd, Del: loopbackDel, Check: loopbackCheck,
		About: "quartet's loopback: brings up lo in the sandbox"})
}

// loopbackAdd sets lo up in the namespace and reports its addresses.
func loopbackAdd(_ context.Context, args *skel.CmdArgs) (types.Result, error) {
	var conf types.NetConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return nil, fmt.Errorf("loopback: decoding configuration: %w", err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: "lo", Mac: "00:00:00:00:00:00", Sandbox: args.Netns}}}
	err := ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			addrs, err := netlinksafe.AddrList(lo, family)
			if err != nil {
				return err
			}
			if len(addrs) > 0 {
				if !addrs[0].IP.IsLoopback() {
					return fmt.Errorf("loopback interface has a non-loopback address %s", addrs[0].IP)
				}
				res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(0), Address: *addrs[0].IPNet})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// loopbackDel sets lo down; a namespace that is already gone is fine.
func loopbackDel(_ context.Context, args *skel.CmdArgs) error {
	if args.Netns == "" {
		return nil
	}
	err := ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(lo)
	})
	if _, gone := err.(ns.NSPathNotExistErr); gone {
		return nil
	}
	return err
}

func loopbackCheck(_ context.Context, args *skel.CmdArgs) error {
	return ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		lo, err := netlinksafe.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&1 == 0 { // net.FlagUp
			return fmt.Errorf("loopback interface is down")
		}
		return nil
	})
}

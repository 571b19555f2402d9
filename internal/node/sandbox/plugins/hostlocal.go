package plugins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
)

func init() {
	register(&Plugin{Name: "host-local", Add: hostLocalAdd, Del: hostLocalDel, Check: hostLocalCheck,
		About: "quartet's host-local IPAM: addresses from ranges (or the ipRanges capability), reservations on disk"})
}

// hostLocalAdd reserves one address in every range set, for the container
// and interface, with the reference plugin's allocator and disk store (so
// the on-disk state is the reference plugin's).
func hostLocalAdd(_ context.Context, args *skel.CmdArgs) (types.Result, error) {
	conf, _, err := allocator.LoadIPAMConfig(args.StdinData, args.Args)
	if err != nil {
		return nil, err
	}
	if conf.ResolvConf != "" {
		return nil, errors.New("host-local: resolvConf is not supported by quartet's built-in host-local")
	}
	store, err := disk.New(conf.Name, conf.DataDir)
	if err != nil {
		return nil, err
	}
	defer store.Close()

	requested := map[string]net.IP{}
	for _, ip := range conf.IPArgs {
		requested[ip.String()] = ip
	}
	result := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: conf.Routes}
	var done []*allocator.IPAllocator
	releaseAll := func() {
		for _, a := range done {
			_ = a.Release(args.ContainerID, args.IfName)
		}
	}
	for i := range conf.Ranges {
		a := allocator.NewIPAllocator(&conf.Ranges[i], store, i)
		var want net.IP
		for k, ip := range requested {
			if conf.Ranges[i].Contains(ip) {
				want = ip
				delete(requested, k)
				break
			}
		}
		ipc, err := a.Get(args.ContainerID, args.IfName, want)
		if err != nil {
			releaseAll()
			return nil, fmt.Errorf("failed to allocate for range %d: %v", i, err)
		}
		done = append(done, a)
		result.IPs = append(result.IPs, ipc)
	}
	if len(requested) > 0 {
		releaseAll()
		var left []string
		for k := range requested {
			left = append(left, k)
		}
		return nil, fmt.Errorf("failed to allocate all requested IPs: %s", strings.Join(left, " "))
	}
	return result, nil
}

func hostLocalDel(_ context.Context, args *skel.CmdArgs) error {
	conf, _, err := allocator.LoadIPAMConfig(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	store, err := disk.New(conf.Name, conf.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	var errs []error
	for i := range conf.Ranges {
		if err := allocator.NewIPAllocator(&conf.Ranges[i], store, i).Release(args.ContainerID, args.IfName); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func hostLocalCheck(_ context.Context, args *skel.CmdArgs) error {
	conf, _, err := allocator.LoadIPAMConfig(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	store, err := disk.New(conf.Name, conf.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	if ips := store.GetByID(args.ContainerID, args.IfName); len(ips) == 0 {
		return fmt.Errorf("host-local: no address reserved for container %s interface %s", args.ContainerID, args.IfName)
	}
	return nil
}

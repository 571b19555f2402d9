package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"sigs.k8s.io/knftables"
)

func init() {
	register(&Plugin{Name: "portmap", Add: portmapAdd, Del: portmapDel, Check: portmapCheck,
		About: "quartet's portmap: hostPort DNAT with nftables"})
}

// defaultPortmapTable is the nftables table (family ip) of the mappings
// when the configuration names none.
const defaultPortmapTable = "cni_hostport_quartet"

// portmapConf is the reference portmap plugin's configuration, nftables
// backend, IPv4. "table" is quartet's addition: the table the rules go to
// (quartet names one per data dir, so that stopping a cluster removes it).
type portmapConf struct {
	types.NetConf
	Backend       *string `json:"backend,omitempty"`
	SNAT          *bool   `json:"snat,omitempty"`
	Table         string  `json:"table,omitempty"`
	RuntimeConfig struct {
		PortMaps []portMapping `json:"portMappings,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	ConditionsV4 *[]string `json:"conditionsV4"`
}

type portMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func loadPortmapConf(data []byte) (*portmapConf, error) {
	c := &portmapConf{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("portmap: decoding configuration: %w", err)
	}
	if c.Backend != nil && *c.Backend != "nftables" {
		return nil, fmt.Errorf("portmap: backend %q is not supported by quartet's built-in portmap (nftables only)", *c.Backend)
	}
	if err := version.ParsePrevResult(&c.NetConf); err != nil {
		return nil, fmt.Errorf("portmap: %w", err)
	}
	if c.Table == "" {
		c.Table = defaultPortmapTable
	}
	for _, m := range c.RuntimeConfig.PortMaps {
		if m.HostPort < 1 || m.HostPort > 65535 || m.ContainerPort < 1 || m.ContainerPort > 65535 {
			return nil, fmt.Errorf("portmap: invalid port mapping %d -> %d", m.HostPort, m.ContainerPort)
		}
		switch strings.ToLower(m.Protocol) {
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("portmap: invalid protocol %q", m.Protocol)
		}
		if m.HostIP != "" && net.ParseIP(m.HostIP) == nil {
			return nil, fmt.Errorf("portmap: invalid hostIP %q", m.HostIP)
		}
	}
	return c, nil
}

const (
	chainHostPorts   = "hostports"
	chainMasquerade  = "masquerading"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
)

// ensureBase writes the table's fixed chains: DNAT for traffic to a local
// address (from outside and from the host itself), then masquerade for a
// pod that reaches itself through its host port.
func ensureBase(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("quartet portmap plugin")})
	tx.Add(&knftables.Chain{Name: chainHostPorts})
	tx.Add(&knftables.Chain{Name: chainMasquerade})
	for _, c := range []struct {
		name     string
		hook     knftables.BaseChainHook
		priority knftables.BaseChainPriority
	}{
		{chainPrerouting, knftables.PreroutingHook, knftables.DNATPriority},
		{chainOutput, knftables.OutputHook, knftables.DNATPriority},
		{chainPostrouting, knftables.PostroutingHook, knftables.SNATPriority},
	} {
		tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(c.hook), Priority: knftables.PtrTo(c.priority)})
		tx.Flush(&knftables.Chain{Name: c.name})
	}
	tx.Add(&knftables.Rule{Chain: chainPrerouting, Rule: "fib daddr type local jump " + chainHostPorts})
	tx.Add(&knftables.Rule{Chain: chainOutput, Rule: "fib daddr type local jump " + chainHostPorts})
	tx.Add(&knftables.Rule{Chain: chainPostrouting, Rule: "jump " + chainMasquerade})
}

// portmapAdd maps the pod's host ports to its address.
func portmapAdd(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	c, err := loadPortmapConf(args.StdinData)
	if err != nil {
		return nil, err
	}
	if c.PrevResult == nil {
		return nil, errors.New("portmap: must be called as a chained plugin")
	}
	prev, err := current.NewResultFromResult(c.PrevResult)
	if err != nil {
		return nil, err
	}
	if len(c.RuntimeConfig.PortMaps) == 0 {
		return prev, nil
	}
	var podIP net.IP
	for _, ipc := range prev.IPs {
		if ipc.Address.IP.To4() != nil {
			podIP = ipc.Address.IP
			break
		}
	}
	if podIP == nil {
		return nil, errors.New("portmap: the previous result has no IPv4 address")
	}
	nft, err := knftables.New(knftables.IPv4Family, c.Table)
	if err != nil {
		return nil, fmt.Errorf("portmap: %w", err)
	}
	tx := nft.NewTransaction()
	ensureBase(tx)
	snat := c.SNAT == nil || *c.SNAT
	comment := args.ContainerID
	for _, m := range c.RuntimeConfig.PortMaps {
		proto := strings.ToLower(m.Protocol)
		match := []string{}
		if c.ConditionsV4 != nil {
			match = append(match, *c.ConditionsV4...)
		}
		if m.HostIP != "" && m.HostIP != "0.0.0.0" {
			match = append(match, "ip daddr", m.HostIP)
		}
		match = append(match, proto, "dport", strconv.Itoa(m.HostPort), "dnat to", net.JoinHostPort(podIP.String(), strconv.Itoa(m.ContainerPort)))
		tx.Add(&knftables.Rule{Chain: chainHostPorts, Rule: knftables.Concat(match), Comment: &comment})
		if snat {
			tx.Add(&knftables.Rule{Chain: chainMasquerade, Rule: knftables.Concat(
				"ip saddr", podIP, "ip daddr", podIP, proto, "dport", m.ContainerPort, "masquerade"), Comment: &comment})
		}
	}
	if err := nft.Run(ctx, tx); err != nil {
		return nil, fmt.Errorf("portmap: %w", err)
	}
	return prev, nil
}

// portmapDel removes every rule of the container.
func portmapDel(ctx context.Context, args *skel.CmdArgs) error {
	c, err := loadPortmapConf(args.StdinData)
	if err != nil {
		return err
	}
	nft, err := knftables.New(knftables.IPv4Family, c.Table)
	if err != nil {
		// Without nft no rule can have been written.
		return nil
	}
	tx := nft.NewTransaction()
	for _, chain := range []string{chainHostPorts, chainMasquerade} {
		rules, err := nft.ListRules(ctx, chain)
		if err != nil {
			if knftables.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("portmap: %w", err)
		}
		for _, r := range rules {
			if r.Comment != nil && *r.Comment == args.ContainerID {
				tx.Delete(r)
			}
		}
	}
	if tx.NumOperations() == 0 {
		return nil
	}
	return nft.Run(ctx, tx)
}

// portmapCheck verifies that every mapping of the container has its rule.
func portmapCheck(ctx context.Context, args *skel.CmdArgs) error {
	c, err := loadPortmapConf(args.StdinData)
	if err != nil {
		return err
	}
	if len(c.RuntimeConfig.PortMaps) == 0 {
		return nil
	}
	nft, err := knftables.New(knftables.IPv4Family, c.Table)
	if err != nil {
		return fmt.Errorf("portmap: %w", err)
	}
	rules, err := nft.ListRules(ctx, chainHostPorts)
	if err != nil {
		return fmt.Errorf("portmap: %w", err)
	}
	n := 0
	for _, r := range rules {
		if r.Comment != nil && *r.Comment == args.ContainerID {
			n++
		}
	}
	if n != len(c.RuntimeConfig.PortMaps) {
		return fmt.Errorf("portmap: %d of %d host port rules of %s are in table %s", n, len(c.RuntimeConfig.PortMaps), args.ContainerID, c.Table)
	}
	return nil
}

package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node"
	"quartet.dev/quartet/internal/pki"
)

// nodeFlags are `quartet up`'s node settings.
type nodeFlags struct {
	count   int
	labels  []string
	taints  []string
	runtime string
}

func (f *nodeFlags) register(c *cobra.Command) {
	c.Flags().IntVar(&f.count, "nodes", 3, "number of nodes, named node-1..node-N (0 runs no node agents: pods stay Pending)")
	c.Flags().StringArrayVar(&f.labels, "node-label", nil, "NODE:KEY=VALUE, a label for one node (repeatable), e.g. node-2:hardware=gpu")
	c.Flags().StringArrayVar(&f.taints, "node-taint", nil, "NODE:KEY=VALUE:EFFECT, a taint for one node (repeatable), e.g. node-1:node-role.kubernetes.io/control-plane=:NoSchedule")
	c.Flags().StringVar(&f.runtime, "runtime", node.RuntimeAuto, "how containers run: process (real host processes), sim (simulated), auto (process when the container has a command or a known image, sim otherwise)")
}

// specs turns the flags into node specs, refusing labels and taints for
// nodes that --nodes does not create.
func (f *nodeFlags) specs() ([]node.NodeSpec, error) {
	if f.count < 0 {
		return nil, fmt.Errorf("--nodes %d: want 0 or more", f.count)
	}
	switch f.runtime {
	case node.RuntimeAuto, node.RuntimeProcess, node.RuntimeSim:
	default:
		return nil, fmt.Errorf("--runtime %q: want auto, process or sim", f.runtime)
	}
	specs := make([]node.NodeSpec, f.count)
	byName := map[string]*node.NodeSpec{}
	for i := range specs {
		specs[i] = node.NodeSpec{Name: fmt.Sprintf("node-%d", i+1), Labels: map[string]string{}}
		byName[specs[i].Name] = &specs[i]
	}
	for _, l := range f.labels {
		n, k, v, err := node.ParseNodeLabel(l)
		if err != nil {
			return nil, fmt.Errorf("--node-label: %w", err)
		}
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--node-label %q: there is no %s (--nodes %d makes node-1..node-%d)", l, n, f.count, f.count)
		}
		s.Labels[k] = v
	}
	for _, t := range f.taints {
		n, taint, err := node.ParseNodeTaint(t)
		if err != nil {
			return nil, fmt.Errorf("--node-taint: %w", err)
		}
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--node-taint %q: there is no %s (--nodes %d makes node-1..node-%d)", t, n, f.count, f.count)
		}
		s.Taints = append(s.Taints, taint)
	}
	return specs, nil
}

// nodesAddon runs the node agents, registers the nodes, and serves the
// control socket through which `quartet node add|remove` reach them.
func nodesAddon(f *nodeFlags, specs []node.NodeSpec, dnsAddr *string, ctl *nodeControl) controlplane.Addon {
	return controlplane.Addon{
		Name: "nodes",
		Start: func(ctx context.Context, cp *controlplane.Cluster) (string, func() error, error) {
			client, _, err := cp.ClientFor(controlplane.UserNodeAgents)
			if err != nil {
				return "", nil, err
			}
			host, err := node.NewHost(node.HostConfig{
				Client:      client,
				AdminClient: cp.Admin(),
				DataDir:     cp.DataDir,
				Runtime:     f.runtime,
				DNSAddress:  *dnsAddr,
				ServingCert: func(name string) (*tls.Certificate, error) {
					c, err := cp.CA.Issue(pki.Leaf{CommonName: "system:node:" + name, Organization: []string{"system:nodes"},
						Server: true, DNSNames: []string{name}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
					if err != nil {
						return nil, err
					}
					return c.TLS(), nil
				},
				ClientCAs:   cp.CA.Pool(),
				ClientNames: []string{controlplane.UserKubeletClient},
			})
			if err != nil {
				return "", nil, err
			}
			hostDone := make(chan error, 1)
			go func() { hostDone <- host.Run(ctx) }()

			saved := &savedNodes{path: datadir.Dir(cp.DataDir).AddedNodes()}
			added, err := saved.load()
			if err != nil {
				return "", nil, err
			}
			all := append(append([]node.NodeSpec(nil), specs...), added...)
			if err := addNodes(ctx, host, all); err != nil {
				return "", nil, err
			}
			ctl.host, ctl.saved = host, saved
			run := func() error { return <-hostDone }
			detail := fmt.Sprintf("%d (%s), runtime %s", len(all), strings.Join(host.Nodes(), ", "), f.runtime)
			switch {
			case len(all) == 0:
				detail = "none yet (quartet node add NAME adds one)"
			case len(all) > 6:
				detail = fmt.Sprintf("%d, runtime %s", len(all), f.runtime)
			}
			if ok, why := host.Isolation(); !ok && f.runtime != node.RuntimeSim {
				detail += "; no per-pod mount and UTS namespaces: " + why
			}
			return detail, run, nil
		},
	}
}

// controlAddon serves the control socket, through which `quartet node`
// reaches the node agents and benchmarks profile the process.
func controlAddon(ctl *nodeControl) controlplane.Addon {
	return controlplane.Addon{
		Name: "control socket",
		Start: func(ctx context.Context, cp *controlplane.Cluster) (string, func() error, error) {
			socket := datadir.Dir(cp.DataDir).ControlSocket()
			done, err := control.Serve(ctx, socket, ctl, cp.CPU)
			if err != nil {
				return "", nil, err
			}
			return socket, func() error { return <-done }, nil
		},
	}
}

// addNodes registers nodes in parallel (bounded), so a thousand sim nodes
// start in seconds.
func addNodes(ctx context.Context, host *node.Host, specs []node.NodeSpec) error {
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := host.AddNode(ctx, s); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("node %s: %w", s.Name, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// nodeControl adapts the node host to the control socket and remembers the
// nodes added at run time, so a restart brings them back.
type nodeControl struct {
	host  *node.Host
	saved *savedNodes
	mu    sync.Mutex
}

func (n *nodeControl) Nodes() []string { return n.host.Nodes() }

func (n *nodeControl) AddNode(ctx context.Context, spec control.NodeSpec) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := node.ValidateNodeName(spec.Name); err != nil {
		return control.InvalidError{Err: err}
	}
	if slices.Contains(n.host.Nodes(), spec.Name) {
		return fmt.Errorf("node %s: %w", spec.Name, control.ErrExists)
	}
	s := node.NodeSpec{Name: spec.Name, Labels: spec.Labels, Taints: spec.Taints}
	if err := n.host.AddNode(ctx, s); err != nil {
		return err
	}
	return n.saved.update(func(m map[string]node.NodeSpec) { m[s.Name] = s })
}

func (n *nodeControl) RemoveNode(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.host.Nodes(), name) {
		return fmt.Errorf("node %s: %w", name, control.ErrNotFound)
	}
	if err := n.host.RemoveNode(ctx, name); err != nil {
		return err
	}
	return n.saved.update(func(m map[string]node.NodeSpec) { delete(m, name) })
}

// savedNodes is the list of nodes added with `quartet node add`.
type savedNodes struct{ path string }

func (s *savedNodes) load() ([]node.NodeSpec, error) {
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]node.NodeSpec, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *savedNodes) read() (map[string]node.NodeSpec, error) {
	m := map[string]node.NodeSpec{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return m, nil
}

func (s *savedNodes) update(f func(map[string]node.NodeSpec)) error {
	m, err := s.read()
	if err != nil {
		return err
	}
	f(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	return pki.WriteFileAtomic(s.path, b, 0o600)
}

// newNode is `quartet node add|remove|list`.
func newNode() *cobra.Command {
	var dataDir string
	c := &cobra.Command{
		Use:   "node",
		Short: "Add, remove or list the nodes of a running quartet",
	}
	c.PersistentFlags().StringVar(&dataDir, "data-dir", datadir.Running(), "data dir of the running quartet (default: $QUARTET_DATA_DIR, the directory of $KUBECONFIG when quartet runs there, or ~/.quartet)")
	client := func() (*control.Client, error) {
		return control.NewClient(datadir.Dir(dataDir).ControlSocket())
	}
	var labels, taints []string
	add := &cobra.Command{
		Use:   "add NAME [--label K=V]... [--taint K=V:EFFECT]...",
		Short: "Add a node; returns once it is Ready",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := control.NodeSpec{Name: args[0], Labels: map[string]string{}}
			if err := node.ValidateNodeName(spec.Name); err != nil {
				return err
			}
			for _, l := range labels {
				k, v, err := node.ParseLabel(l)
				if err != nil {
					return fmt.Errorf("--label: %w", err)
				}
				spec.Labels[k] = v
			}
			for _, t := range taints {
				taint, err := node.ParseTaint(t)
				if err != nil {
					return fmt.Errorf("--taint: %w", err)
				}
				spec.Taints = append(spec.Taints, taint)
			}
			cl, err := client()
			if err != nil {
				return err
			}
			if err := cl.AddNode(cmd.Context(), spec); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node/%s added\n", spec.Name)
			return nil
		},
	}
	add.Flags().StringArrayVar(&labels, "label", nil, "KEY=VALUE label (repeatable)")
	add.Flags().StringArrayVar(&taints, "taint", nil, "KEY=VALUE:EFFECT taint (repeatable)")
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop a node's agent (its pods' processes end) and delete the Node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			if err := cl.RemoveNode(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node/%s removed\n", args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the nodes this quartet's agents run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			names, err := cl.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	c.AddCommand(add, remove, list)
	return c
}

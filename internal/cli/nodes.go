package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node"
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
	c.Flags().StringVar(&f.runtime, "runtime", node.RuntimeAuto, "how containers run: oci (from their images, pulled into the data dir; needs root), process (the host's own programs), sim (simulated), auto (oci whenever the image is in the store or can be pulled; else process for a command or a mapped image, sim otherwise)")
}

// specs turns the flags into node specs, refusing labels and taints for
// nodes that --nodes does not create.
func (f *nodeFlags) specs() ([]node.NodeSpec, error) {
	if f.count < 0 {
		return nil, fmt.Errorf("--nodes %d: want 0 or more", f.count)
	}
	switch f.runtime {
	case node.RuntimeAuto, node.RuntimeOCI, node.RuntimeProcess, node.RuntimeSim:
	default:
		return nil, fmt.Errorf("--runtime %q: want auto, oci, process or sim", f.runtime)
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
			spec, err := nodeAddSpec(args[0], labels, taints)
			if err != nil {
				return err
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

// nodeAddSpec checks `quartet node add`'s name, --label and --taint values.
func nodeAddSpec(name string, labels, taints []string) (control.NodeSpec, error) {
	spec := control.NodeSpec{Name: name, Labels: map[string]string{}}
	if err := node.ValidateNodeName(spec.Name); err != nil {
		return spec, err
	}
	for _, l := range labels {
		k, v, err := node.ParseLabel(l)
		if err != nil {
			return spec, fmt.Errorf("--label: %w", err)
		}
		spec.Labels[k] = v
	}
	for _, t := range taints {
		taint, err := node.ParseTaint(t)
		if err != nil {
			return spec, fmt.Errorf("--taint: %w", err)
		}
		spec.Taints = append(spec.Taints, taint)
	}
	return spec, nil
}

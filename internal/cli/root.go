// Package cli holds quartet's commands; cmd/quartet only dispatches to it.
package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"quartet.dev/quartet/internal/cronnext"
	"quartet.dev/quartet/internal/explain"
	"quartet.dev/quartet/internal/version"
)

// NewRoot returns the quartet command tree (kubectl is dispatched before it,
// so its flags reach kubectl untouched).
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "quartet",
		Short: "A Kubernetes cluster on one machine, with its own StatefulSet, DaemonSet, Job and CronJob controllers",
		Long: `quartet runs a Kubernetes-compatible cluster on this machine: embedded etcd, the
upstream API server, controller manager and scheduler, and quartet's own
StatefulSet, DaemonSet, Job, CronJob and TTL-after-finished controllers.

  quartet up                 start a cluster (Ctrl-C stops it)
  quartet kubectl get pods   use it with the embedded kubectl v1.37`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	// Kubernetes packages register a global --version flag at init; quartet
	// has a version subcommand instead.
	_ = pflag.CommandLine.MarkHidden("version")
	explainCmd := explain.Command(explain.Deps{Now: time.Now, Local: cronnext.MachineZone, Client: explain.ClusterClient})
	root.AddCommand(newUp(), newControllers(), newNode(), newImage(), cronnext.Command(), explainCmd, newUI(), newVersion(), &cobra.Command{
		Use:                "kubectl [args...]",
		Short:              "Run the embedded kubectl against the cluster (uses <data-dir>/kubeconfig when KUBECONFIG is unset)",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			os.Exit(Kubectl(args))
			return nil
		},
	})
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print quartet's version and the Kubernetes version it embeds",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
		},
	}
}

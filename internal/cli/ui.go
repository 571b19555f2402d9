package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"quartet.dev/quartet/internal/cronnext"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/ui"
)

// newUI is `quartet ui`: the web UI against any cluster a kubeconfig names.
func newUI() *cobra.Command {
	var kubeconfig, address string
	c := &cobra.Command{
		Use:   "ui",
		Short: "Serve the web UI on loopback against a cluster (prints a one-time login URL); Ctrl-C stops it",
		Long: `quartet ui serves a live web view of a cluster's StatefulSets, DaemonSets, Jobs,
CronJobs, nodes and events, on a loopback address. It prints a login URL that
works once: opening it starts a browser session. Without --kubeconfig it uses
$KUBECONFIG, then the running quartet's (<data-dir>/kubeconfig), then
~/.kube/config. The identity in the kubeconfig needs get, list and watch on
pods, nodes, persistentvolumeclaims, persistentvolumes, events, statefulsets,
daemonsets, controllerrevisions, jobs and cronjobs (and services, deployments
and storageclasses for the explain panel).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			switch {
			case kubeconfig != "":
				rules.ExplicitPath = kubeconfig
			case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
			default:
				if p := datadir.Dir(datadir.Running()).Kubeconfig(); fileExists(p) {
					rules.ExplicitPath = p
				}
			}
			rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return fmt.Errorf("no cluster to show (start one with `quartet up`, or pass --kubeconfig): %w", err)
			}
			rc.QPS, rc.Burst = 50, 100
			rc.UserAgent = "quartet-ui"
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			srv, err := ui.Start(ctx, ui.Config{Client: client, Address: address, ControllerZone: cronnext.MachineZone()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "quartet ui for %s: open %s (works once); Ctrl-C stops it\n", rc.Host, srv.LoginURL())
			<-srv.Done()
			return srv.Err()
		},
	}
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to show")
	c.Flags().StringVar(&address, "address", "127.0.0.1:0", "loopback address to listen on (port 0: a free one)")
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

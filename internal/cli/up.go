package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/up"
)

func newUp() *cobra.Command {
	cfg := up.Config{}
	var nodes nodeFlags
	var dataDir, datastore string
	c := &cobra.Command{
		Use:   "up",
		Short: "Start a cluster in the foreground until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := datadir.New(dataDir)
			if err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			cfg.Dir = dir
			if datastore != "" {
				for _, ep := range strings.Split(datastore, ",") {
					if ep = strings.TrimSpace(ep); ep != "" {
						cfg.Datastore.Endpoints = append(cfg.Datastore.Endpoints, ep)
					}
				}
			}
			if cfg.Nodes, err = nodes.specs(); err != nil {
				return err
			}
			cfg.Runtime = nodes.runtime
			cfg.Progress = cmd.OutOrStdout()
			ctx, stop := signalContext()
			defer stop()
			return up.Run(ctx, cfg)
		},
	}
	nodes.register(c)
	f := c.Flags()
	f.StringVar(&dataDir, "data-dir", datadir.Default(), "directory for the cluster's state, certificates, kubeconfig and logs")
	f.IntVar(&cfg.APIPort, "api-port", 6443, "API server port on 127.0.0.1")
	f.StringVar(&cfg.WorkloadControllers, "workload-controllers", controlplane.ModeQuartet,
		"which StatefulSet, DaemonSet, Job, CronJob and TTL-after-finished controllers run: quartet (its own), upstream (kube-controller-manager's, the reference) or none (for controllers run by `quartet controllers` beside the cluster)")
	f.StringVar(&datastore, "datastore-endpoint", "", "comma-separated URLs of an existing etcd cluster to use instead of embedded etcd")
	f.StringVar(&cfg.Datastore.CAFile, "datastore-cafile", "", "CA certificate that verifies the --datastore-endpoint servers (https; default: the system's roots)")
	f.StringVar(&cfg.Datastore.CertFile, "datastore-certfile", "", "client certificate quartet presents to the --datastore-endpoint servers")
	f.StringVar(&cfg.Datastore.KeyFile, "datastore-keyfile", "", "key of --datastore-certfile")
	f.StringVar(&cfg.DNSAddress, "dns-address", "", "UDP and TCP address of cluster DNS; the bound address is printed (default: as root, port 53 on the host's address on the pod network, or on a loopback address of the data dir's own without one; a free port on 127.0.0.1 otherwise)")
	f.StringSliceVar(&cfg.DNSUpstream, "dns-upstream", nil, "DNS servers for names outside cluster.local (default: none, such names are refused)")
	f.BoolVar(&cfg.UI, "ui", true, "serve the web UI on loopback and print its one-time login URL")
	f.StringVar(&cfg.UIAddress, "ui-address", "127.0.0.1:0", "loopback address of the web UI (port 0: a free one)")
	f.Float32Var(&cfg.APIQPS, "api-qps", 1000, "client QPS limit of every in-process component (both controller modes alike)")
	f.IntVar(&cfg.APIBurst, "api-burst", 2000, "client burst limit of every in-process component")
	return c
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once.
//
// It also takes SIGPIPE: otherwise a progress line written to a standard
// output whose reader is gone (a closed pipe) kills the process on the spot,
// skipping the clean-up of the pod network, as a kill -9 would. With it
// taken, such a write just fails and the lines are lost. (signal.Ignore
// would do the same, but an ignored signal stays ignored in every program
// quartet starts.)
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "quartet: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); signal.Stop(pipe); cancel() }
}

// Command quartet runs a Kubernetes-compatible cluster on one machine, with
// its own StatefulSet, DaemonSet, Job and CronJob controllers.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"quartet.dev/quartet/internal/cli"
	"quartet.dev/quartet/internal/node/sandbox/plugins"
)

func main() {
	// Run under a CNI plugin's name (a link in the data dir's CNI bin
	// directory), the binary is that plugin.
	if name := filepath.Base(os.Args[0]); plugins.Lookup(name) != nil {
		plugins.Main(name)
	}
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Exit(cli.Kubectl(os.Args[2:]))
	}
	if err := cli.NewRoot().Execute(); err != nil {
		// A command that chooses its exit status (quartet explain) says so
		// with an ExitCode method, and an empty message when it has printed
		// its outcome already.
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintf(os.Stderr, "quartet: %s\n", msg)
			}
			os.Exit(coded.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "quartet: %v\n", err)
		os.Exit(1)
	}
}

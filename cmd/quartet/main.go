// Command quartet runs a Kubernetes-compatible cluster on one machine, with
// its own StatefulSet, DaemonSet, Job and CronJob controllers.
package main

import (
	"fmt"
	"os"

	"quartet.dev/quartet/internal/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Exit(cli.Kubectl(os.Args[2:]))
	}
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "quartet: %v\n", err)
		os.Exit(1)
	}
}

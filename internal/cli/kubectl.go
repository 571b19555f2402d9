package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // client auth plugins, as in kubectl
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	k8sversion "k8s.io/component-base/version"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/apply"
	"k8s.io/kubectl/pkg/cmd/util"

	"quartet.dev/quartet/internal/cli/startgc"
	"quartet.dev/quartet/internal/datadir"

	// Loads kubectl's message catalogs only for the languages they
	// translate (before kubectl's packages are initialised).
	_ "quartet.dev/quartet/internal/cli/translations"
)

// Kubectl runs the embedded kubectl with args and returns its exit code.
// When KUBECONFIG is unset it uses the data dir's kubeconfig
// ($QUARTET_DATA_DIR or ~/.quartet), so nothing else needs configuring.
func Kubectl(args []string) int {
	startgc.Resume()
	if os.Getenv("KUBECONFIG") == "" {
		kc := datadir.Dir(datadir.Default()).Kubeconfig()
		if _, err := os.Stat(kc); err == nil {
			os.Setenv("KUBECONFIG", kc)
		} else if errors.Is(err, fs.ErrPermission) && !hasKubeconfigFlag(args) {
			fmt.Fprintf(os.Stderr, "quartet kubectl: %s: permission denied (the data dir belongs to the user who runs `quartet up`)\n", kc)
			return 1
		} else if !hasKubeconfigFlag(args) {
			fmt.Fprintf(os.Stderr, "quartet kubectl: no cluster: %s does not exist (start one with `quartet up`, or set KUBECONFIG)\n", kc)
			return 1
		}
	}
	// kubectl reads os.Args itself (plugins, verbosity), so it sees the
	// arguments as if it were invoked as kubectl.
	os.Args = append([]string{"kubectl"}, args...)
	// Computed at package init, before the version is known to be stamped.
	apply.ApplySetToolVersion = k8sversion.Get().GitVersion
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err) // prints kubectl's own message and exits 1
	}
	return 0
}

func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || len(a) > 13 && a[:13] == "--kubeconfig=" {
			return true
		}
	}
	return false
}

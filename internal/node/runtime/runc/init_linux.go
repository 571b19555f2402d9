package runc

import (
	"os"

	// Device rules for containers' cgroups.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	// nsenter joins namespaces before the Go runtime starts, in the
	// re-executed init (cgo).
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// init turns a binary that links this package into a container's init
// when libcontainer re-executes it (/proc/self/exe init): quartet itself
// and test binaries alike. Init never returns.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
}

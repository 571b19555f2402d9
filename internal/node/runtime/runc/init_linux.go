package runc

import (
	"os"

	// Device rules for containers' cgroups.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	// nsenter joins namespaces before the Go runtime starts, in the
	// re-executed init (cgo).
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"golang.org/x/sys/unix"
)

// init turns a binary that links this package into a container's init
// when libcontainer re-executes it (/proc/self/exe init): quartet itself
// and test binaries alike. Init never returns.
//
// The container's process dies with quartet: the parent-death signal is set
// here, before libcontainer's init reads it (it keeps it across the switch
// to the container's user), because the process nsenter clones for the
// container does not inherit the one libcontainer sets on its first stage.
// With the container's init, the kernel ends every process of its PID
// namespace.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		libcontainer.Init()
	}
}

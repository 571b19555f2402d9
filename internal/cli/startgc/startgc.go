// Package startgc pauses the garbage collector while the binary's packages
// are initialised, when it runs as `quartet kubectl` or as a container's
// init (libcontainer re-executes the binary for every container start and
// every `kubectl exec`), and is imported for that effect.
//
// Both are short starts in which Go initialises the packages of the whole
// binary (~1,200; kubectl's about 14 MB of allocations) before main: the
// collector would run ~4 cycles over that heap (about a tenth of the CPU
// of a `quartet kubectl` start) and free little. The pause begins when
// this package is initialised (it needs only the runtime's packages, so
// Go initialises it among the first) and ends when Resume is called (cli.Kubectl
// calls it first) or, for a container's init, when it executes the
// container's process. Other commands and test binaries are not affected.
package startgc

import (
	"os"
	"runtime/debug"
)

// paused holds the GC percentage to restore (-2: not paused).
var paused = pause()

func pause() int {
	if len(os.Args) > 1 && (os.Args[1] == "kubectl" || os.Args[1] == "init") {
		return debug.SetGCPercent(-1)
	}
	return -2
}

// Resume restores the garbage collector's setting ($GOGC) if it was paused.
func Resume() {
	if paused != -2 {
		debug.SetGCPercent(paused)
		paused = -2
	}
}

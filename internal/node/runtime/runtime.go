// Package runtime defines what a quartet node agent needs from the thing that
// runs a container: start one instance, learn when and how it ended, signal it,
// and run a command beside it. The agent owns every decision (when to start,
// restart or kill); a runtime only executes.
//
// Two runtimes implement it: process (each container a real host process) and
// sim (no process at all, for scale and for images with no local entrypoint).
package runtime

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Kind names a runtime in container IDs ("process://…", "sim://…") and in the
// Node's containerRuntimeVersion.
type Kind string

const (
	KindProcess Kind = "process"
	KindSim     Kind = "sim"
)

// Mount is one volume mount of a container, already resolved to a host path.
type Mount struct {
	// HostPath is the directory or file on the host that backs the mount.
	HostPath string
	// ContainerPath is the absolute path the container sees it at.
	ContainerPath string
	ReadOnly      bool
}

// ContainerSpec is one container instance, fully resolved by the agent: the
// command line, the environment and the mounts hold no references any more.
type ContainerSpec struct {
	// ID is the instance's container ID without the "<kind>://" prefix.
	ID           string
	PodUID       string
	PodNamespace string
	PodName      string
	Name         string
	Image        string

	// Argv is the command and its arguments; Argv[0] is looked up in the
	// PATH of Env when it holds no slash.
	Argv       []string
	Env        []string // KEY=VALUE
	WorkingDir string   // "" means "/"
	Mounts     []Mount
	// Hostname is the pod's hostname, set in the container's UTS namespace
	// when the runtime isolates containers.
	Hostname string
	// RunAsUser and RunAsGroup are applied when the runtime runs as root.
	RunAsUser  *int64
	RunAsGroup *int64

	// LogPath is the file the instance's stdout and stderr go to, in the CRI
	// log format ("<RFC3339Nano> <stream> <F|P> <line>").
	LogPath string
	// StateDir is scratch space the runtime may use for this instance; it is
	// removed by the agent when the pod goes away.
	StateDir string
}

// ExitStatus is how an instance ended.
type ExitStatus struct {
	ExitCode   int32
	Reason     string // "Completed", "Error", "StartError", ...
	Message    string
	FinishedAt time.Time
}

// Instance is one started instance of a container.
type Instance interface {
	// ID is the full container ID, "<kind>://<hex>".
	ID() string
	StartedAt() time.Time
	// Exited reports the exit status once the instance has ended.
	Exited() (ExitStatus, bool)
	// Signal delivers sig to every process of the instance. Signalling an
	// instance that has exited is not an error.
	Signal(sig syscall.Signal) error
}

// Runtime starts container instances.
type Runtime interface {
	Kind() Kind
	// Start starts one instance. onExit is called once, from any goroutine,
	// after the instance has ended. A *StartError means the instance never
	// ran; the agent reports it as the runtime would (exit code 128,
	// reason StartError).
	Start(ctx context.Context, spec *ContainerSpec, onExit func()) (Instance, error)
	// Exec runs argv beside a running instance, as exec probes do, and
	// returns its exit code and combined output.
	Exec(ctx context.Context, inst Instance, argv []string, timeout time.Duration) (int, []byte, error)
}

// StartError is a failure to start an instance that the user can act on,
// e.g. an executable that does not exist. It carries the message kubectl shows.
type StartError struct {
	Message string
}

func (e *StartError) Error() string { return e.Message }

// IsStartError reports whether err is a *StartError.
func IsStartError(err error) bool {
	var se *StartError
	return errors.As(err, &se)
}

// ExitReason is the reason container runtimes give a terminated container:
// "Completed" for exit code 0 and "Error" otherwise.
func ExitReason(code int32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

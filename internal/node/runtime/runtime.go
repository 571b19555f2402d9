// Package runtime defines what a quartet node agent needs from the thing that
// runs a container: say what an image runs, start one instance, learn when
// and how it ended, signal it, run a command beside it (exec probes, preStop
// hooks, `kubectl exec`) and attach to its stdio. The agent owns every decision
// (when to start, restart or kill); a runtime only executes.
//
// The agent holds its runtimes in a map from Kind to Runtime and reaches
// them only through this interface. Three runtimes implement it: oci (a
// container from an OCI image, pulled into the data dir's image store),
// process (a container whose root is the host's filesystem, or a plain host
// process without root) and sim (no process at all, for scale and for
// images that cannot be had).
package runtime

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind names a runtime in container IDs ("oci://…", "process://…",
// "sim://…") and in the Node's containerRuntimeVersion.
type Kind string

const (
	KindOCI     Kind = "oci"
	KindProcess Kind = "process"
	KindSim     Kind = "sim"
)

// KindOf returns the runtime kind of a container ID ("process://…" →
// process), or "" when the ID has no kind.
func KindOf(containerID string) Kind {
	k, _, ok := strings.Cut(containerID, "://")
	if !ok {
		return ""
	}
	return Kind(k)
}

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
	// ImageID is the image the instance runs, as ImageConfig.ID names it
	// ("repo@sha256:…"; oci), so that what was pulled is what runs.
	ImageID string

	// Argv is the command and its arguments; Argv[0] is looked up in the
	// PATH of Env when it holds no slash.
	Argv       []string
	Env        []string // KEY=VALUE
	WorkingDir string   // "" means "/"
	Mounts     []Mount
	// Hostname is the pod's hostname, set in the container's UTS namespace
	// when the runtime isolates containers.
	Hostname string
	// PIDNamespacePath, when set, is the PID namespace (an nsfs file) the
	// container joins instead of its own: the pod's with
	// shareProcessNamespace, else an ephemeral container's target's.
	PIDNamespacePath string
	// IPCNamespacePath and UTSNamespacePath, when set, are the pod's IPC
	// and UTS namespaces (which has the pod's hostname), joined instead of
	// the container's own; ShmPath is the pod's /dev/shm on the host.
	IPCNamespacePath string
	UTSNamespacePath string
	ShmPath          string
	// NetNSPath is the pod's network namespace (a bind-mounted nsfs file)
	// that the container joins; "" is the host's network.
	NetNSPath string
	// RunAsUser and RunAsGroup are applied when the runtime runs as root.
	RunAsUser  *int64
	RunAsGroup *int64
	// Security is the rest of the container's securityContext, resolved.
	Security Security
	// Resources are the container's limits, enforced through its cgroup.
	Resources Resources

	// Stdin keeps the container's stdin open for attach; StdinOnce closes
	// it after the first attach ends; TTY gives the container a terminal.
	// (The container's stdin/stdout/stderr fields of the pod spec.)
	Stdin     bool
	StdinOnce bool
	TTY       bool

	// LogPath is the file the instance's stdout and stderr go to, in the CRI
	// log format ("<RFC3339Nano> <stream> <F|P> <line>").
	LogPath string
	// StateDir is scratch space the runtime may use for this instance; it is
	// removed by the agent when the pod goes away.
	StateDir string
}

// Security is what a container's securityContext asks of the runtime
// beyond its user.
type Security struct {
	Privileged bool
	// CapAdd and CapDrop change the container default capability set;
	// names as Kubernetes writes them ("NET_ADMIN", "ALL").
	CapAdd, CapDrop []string
	// NoNewPrivileges is allowPrivilegeEscalation: false.
	NoNewPrivileges        bool
	ReadOnlyRootFilesystem bool
	SupplementalGroups     []int64
	// Seccomp is the container's seccomp profile: "" is unconfined,
	// SeccompRuntimeDefault the runtime's default profile.
	Seccomp string
}

// SeccompRuntimeDefault is seccompProfile type RuntimeDefault.
const SeccompRuntimeDefault = "RuntimeDefault"

// Resources are a container's limits (0: none).
type Resources struct {
	MemoryLimit    int64 // bytes
	CPULimitMillis int64
}

// ImageConfig is what a container image runs when the container does not
// say otherwise: the container's command replaces Entrypoint, its args
// replace Cmd.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	// Env is the image's environment, under the container's own (oci).
	Env []string
	// User is the image's user ("uid[:gid]" or a name; "" is root).
	User string
	// ID names the image for status.imageID ("repo@sha256:…"); "" when
	// the runtime runs no image.
	ID string
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

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// ExecOptions is one command to run beside a running instance. Streams that
// are nil are not connected (the command's stdin reads EOF, its output is
// dropped). With TTY the command gets a terminal: Stdout receives its
// output, Stderr nothing, and Resize (if not nil) resizes the terminal.
type ExecOptions struct {
	Argv   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	TTY    bool
	Resize <-chan TerminalSize
}

// Runtime runs container instances of one kind.
type Runtime interface {
	Kind() Kind
	// Image says what image runs for a container whose command is command,
	// or why this runtime cannot run it (an *UnrunnableError).
	Image(ctx context.Context, image string, command []string) (ImageConfig, error)
	// Start starts one instance. onExit is called once, from any goroutine,
	// after the instance has ended. A *StartError means the instance never
	// ran; the agent reports it as the runtime would (exit code 128,
	// reason StartError).
	Start(ctx context.Context, spec *ContainerSpec, onExit func()) (Instance, error)
	// ExecStream runs a command beside a running instance, in its
	// namespaces, and returns its exit code once it has ended. The command
	// is killed when ctx ends (the error is then ctx's).
	ExecStream(ctx context.Context, inst Instance, opts ExecOptions) (int, error)
	// Attach connects a client to a running instance's stdio (its stdin
	// only when the container keeps stdin open, its terminal when it has
	// one) until the instance ends, ctx ends or the client's output fails.
	// When the container's StdinOnce is set, the instance's stdin is closed
	// once the first client that sent stdin has gone.
	Attach(ctx context.Context, inst Instance, opts AttachOptions) error
	// KillLeftovers kills every process that a previous run of quartet on
	// the same data dir left behind (after a crash), before any pod starts,
	// and returns how many instances it found.
	KillLeftovers(ctx context.Context) (int, error)
	// Shutdown stops every instance: SIGTERM, then SIGKILL after grace. It
	// returns once every instance has ended.
	Shutdown(grace time.Duration)
}

// UnrunnableError says why a runtime cannot run a container's image; the
// container waits with reason ErrImageNeverPull and this message.
type UnrunnableError struct {
	Message string
}

func (e *UnrunnableError) Error() string { return e.Message }

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

// Argv returns the command line for a container as container runtimes build
// it: command replaces the image's entrypoint and args replace its cmd;
// args alone keep the entrypoint.
func Argv(command, args []string, img ImageConfig) []string {
	if len(command) > 0 {
		return append(append([]string(nil), command...), args...)
	}
	argv := append([]string(nil), img.Entrypoint...)
	if len(args) > 0 {
		return append(argv, args...)
	}
	return append(argv, img.Cmd...)
}

// Stoppable is an instance Stop can end: it takes signals and says when it
// has ended.
type Stoppable interface {
	Signal(sig syscall.Signal) error
	Done() <-chan struct{}
}

// Stop sends SIGTERM to every instance, waits up to grace for them to end,
// and sends SIGKILL to what is left: a runtime's Shutdown.
func Stop[I Stoppable](insts []I, grace time.Duration) {
	SignalAll(insts, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, i := range insts {
		select {
		case <-i.Done():
		case <-ctx.Done():
		}
	}
	SignalAll(insts, syscall.SIGKILL)
}

// SignalAll sends sig to every instance, several at once: signalling a
// container can wait on kernel locks that the tear-down of others holds
// (cgroups), and one at a time a thousand took seconds.
func SignalAll[I Stoppable](insts []I, sig syscall.Signal) {
	const workers = 16
	next := make(chan I)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, len(insts)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_ = i.Signal(sig)
			}
		}()
	}
	for _, i := range insts {
		next <- i
	}
	close(next)
	wg.Wait()
}

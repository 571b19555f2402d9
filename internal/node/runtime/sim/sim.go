// Package sim is the runtime that runs nothing: a simulated container is
// Running from the moment it starts and ends only when the agent says so
// (a quartet.dev/sim-exit-code annotation, or a kill). It costs a few hundred
// bytes per container, which is what lets one machine host thousands of pods.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/node/runtime"
)

// Annotations that drive simulated containers. They are read from the pod;
// controllers copy them there from the pod template.
const (
	// AnnotationExitCode makes every regular container of the pod terminate
	// with this exit code.
	AnnotationExitCode = "quartet.dev/sim-exit-code"
	// AnnotationRunSeconds is how long a container runs before it terminates
	// with AnnotationExitCode (default 0).
	AnnotationRunSeconds = "quartet.dev/sim-run-seconds"
	// AnnotationReady set to "false" makes every container unready; "true"
	// (or absent) leaves readiness to the readiness probe's timing.
	AnnotationReady = "quartet.dev/sim-ready"
)

// Behaviour is what a pod's annotations ask of its simulated containers.
type Behaviour struct {
	// ExitCode, when set, is the code regular containers terminate with.
	ExitCode *int32
	// RunFor is how long a container runs before it terminates with ExitCode.
	RunFor time.Duration
	// Unready forces every container unready.
	Unready bool
}

// ParseBehaviour reads the quartet.dev/sim-* annotations. A malformed value
// is reported as an error and otherwise ignored, so a typo never crashes a pod.
func ParseBehaviour(annotations map[string]string) (Behaviour, error) {
	var b Behaviour
	var errs []error
	if v, ok := annotations[AnnotationExitCode]; ok {
		code, err := strconv.ParseInt(v, 10, 32)
		if err != nil || code < 0 || code > 255 {
			errs = append(errs, fmt.Errorf("annotation %s=%q: want an exit code 0..255", AnnotationExitCode, v))
		} else {
			c := int32(code)
			b.ExitCode = &c
		}
	}
	if v, ok := annotations[AnnotationRunSeconds]; ok {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 || secs > 1e9 {
			errs = append(errs, fmt.Errorf("annotation %s=%q: want a number of seconds >= 0", AnnotationRunSeconds, v))
		} else {
			b.RunFor = time.Duration(secs * float64(time.Second))
		}
	}
	if v, ok := annotations[AnnotationReady]; ok {
		switch v {
		case "false":
			b.Unready = true
		case "true":
		default:
			errs = append(errs, fmt.Errorf("annotation %s=%q: want \"true\" or \"false\"", AnnotationReady, v))
		}
	}
	if len(errs) > 0 {
		return b, fmt.Errorf("%v", errs)
	}
	return b, nil
}

// Runtime is the sim runtime.
type Runtime struct {
	clock clock.PassiveClock
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a sim runtime that stamps start and finish times from c.
func New(c clock.PassiveClock) *Runtime {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Runtime{clock: c}
}

// Kind implements runtime.Runtime.
func (r *Runtime) Kind() runtime.Kind { return runtime.KindSim }

// Start implements runtime.Runtime: the instance is running at once.
func (r *Runtime) Start(_ context.Context, spec *runtime.ContainerSpec, onExit func()) (runtime.Instance, error) {
	id := spec.ID
	if id == "" {
		sum := sha256.Sum256([]byte(spec.PodUID + "/" + spec.Name + "/" + r.clock.Now().String()))
		id = hex.EncodeToString(sum[:])
	}
	return &Instance{id: string(runtime.KindSim) + "://" + id, started: r.clock.Now(), clock: r.clock, onExit: onExit}, nil
}

// Image implements runtime.Runtime: any image runs, simulated.
func (r *Runtime) Image(context.Context, string, []string) (runtime.ImageConfig, error) {
	return runtime.ImageConfig{}, nil
}

// Attach implements runtime.Runtime. Simulated containers have no stdio.
func (r *Runtime) Attach(context.Context, runtime.Instance, runtime.AttachOptions) error {
	return fmt.Errorf("sim runtime: cannot attach to a simulated container")
}

// ExecStream implements runtime.Runtime. Simulated containers have nothing
// to run a command in; probes of simulated containers are never executed.
func (r *Runtime) ExecStream(context.Context, runtime.Instance, runtime.ExecOptions) (int, error) {
	return -1, fmt.Errorf("sim runtime: cannot exec in a simulated container")
}

// KillLeftovers implements runtime.Runtime: nothing simulated outlives quartet.
func (r *Runtime) KillLeftovers(context.Context) (int, error) { return 0, nil }

// Shutdown implements runtime.Runtime: simulated containers need no stopping.
func (r *Runtime) Shutdown(time.Duration) {}

// Instance is one simulated container.
type Instance struct {
	id      string
	started time.Time
	clock   clock.PassiveClock
	onExit  func()

	mu     sync.Mutex
	exit   runtime.ExitStatus
	exited bool
}

// ID implements runtime.Instance.
func (i *Instance) ID() string { return i.id }

// StartedAt implements runtime.Instance.
func (i *Instance) StartedAt() time.Time { return i.started }

// Exited implements runtime.Instance.
func (i *Instance) Exited() (runtime.ExitStatus, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.exit, i.exited
}

// Finish ends the instance with code at time at. Finishing twice keeps the first.
func (i *Instance) Finish(code int32, at time.Time) {
	i.mu.Lock()
	if i.exited {
		i.mu.Unlock()
		return
	}
	i.exited = true
	i.exit = runtime.ExitStatus{ExitCode: code, Reason: runtime.ExitReason(code), FinishedAt: at}
	i.mu.Unlock()
	if i.onExit != nil {
		i.onExit()
	}
}

// Signal implements runtime.Instance: a simulated process dies of SIGTERM and
// SIGKILL at once, with the exit code a shell reports for it (128+signal).
func (i *Instance) Signal(sig syscall.Signal) error {
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL || sig == syscall.SIGINT {
		i.Finish(128+int32(sig), i.clock.Now())
	}
	return nil
}

// Adopt returns a running instance with a known ID and start time: the
// simulated container a previous run of quartet reported as running.
func Adopt(id string, startedAt time.Time, c clock.PassiveClock, onExit func()) *Instance {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Instance{id: id, started: startedAt, clock: c, onExit: onExit}
}

package node

import (
	"time"

	v1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/node/runtime"
)

// attempt is one instance of a container as the plan sees it. The agent
// fills it from the runtime before each plan.
type attempt struct {
	ID  string
	Sim bool
	// Image and ImageID are the image the instance runs as status.image
	// and status.imageID report it (oci: "docker.io/library/nginx:1.27",
	// "docker.io/library/nginx@sha256:…"); "" for the other runtimes.
	Image     string
	ImageID   string
	StartedAt time.Time
	// SpecHash identifies the container spec the instance was started from;
	// a change of it restarts the container, as a kubelet does.
	SpecHash string

	Running    bool
	ExitCode   int32
	Reason     string
	Message    string
	FinishedAt time.Time

	// StopSentAt is when the agent asked the instance to stop (SIGTERM);
	// KillAt is when it sends SIGKILL if the instance is still running.
	StopSentAt time.Time
	KillAt     time.Time
	KillSent   bool
	// RestartAfterStop restarts the container once stopped whatever the
	// restart policy says (spec change).
	RestartAfterStop bool

	// Probe results for process containers.
	Started        bool // the startup probe succeeded (or there is none)
	Ready          bool // the readiness probe's verdict (true when there is none)
	LivenessFailed bool
	StartupFailed  bool
}

func (a *attempt) terminated() *v1.ContainerStateTerminated {
	return &v1.ContainerStateTerminated{
		ExitCode:    a.ExitCode,
		Reason:      a.Reason,
		Message:     a.Message,
		StartedAt:   metaTime(a.StartedAt),
		FinishedAt:  metaTime(a.FinishedAt),
		ContainerID: a.ID,
	}
}

// waitingReason is why a container could not be started.
type waitingReason struct {
	Reason  string
	Message string
}

// containerState is everything the agent keeps about one container of a pod.
type containerState struct {
	RestartCount int32
	// Current is the latest instance (running or ended), Last the one
	// before it (the status' lastState).
	Current *attempt
	Last    *attempt
	// Waiting is set when the last try to start failed before anything ran
	// (a config error, an image the process runtime cannot run).
	Waiting *waitingReason
	// RetryAt is when a start that failed that way is tried again, and
	// RetryDelay the delay that led to it.
	RetryAt    time.Time
	RetryDelay time.Duration
	// BackoffDelay and BackoffUpdated are the crash-loop back-off: the delay
	// before the next restart and when it was last set.
	BackoffDelay   time.Duration
	BackoffUpdated time.Time
	// NextKind is the runtime a new instance would run under now, and
	// Unrunnable why none can run it (then NextKind is ""); the agent
	// computes them before each plan from the runtime mode and the runtimes.
	NextKind   runtime.Kind
	Unrunnable string
	// Pull is where the container's image stands for the oci runtime.
	Pull imagePull
}

// imagePull is where a container's image stands for its next instance
// under the oci runtime: ready, being pulled, or failed (with the
// kubelet's image pull back-off).
type imagePull struct {
	// Image is the container's image this is about; a changed image
	// starts over.
	Image string
	// Ready is the image (ID, "repo@sha256:…") the next instance runs; a
	// start consumes it, so that imagePullPolicy Always pulls before every
	// start.
	Ready string
	// Pulling is set while a pull is under way.
	Pulling bool
	// Reason (ErrImagePull, InvalidImageName, ErrImageNeverPull) and
	// Message are the last failure, FailedAt when it happened; the next try
	// is at RetryAt, Backoff after it.
	Reason   string
	Message  string
	FailedAt time.Time
	Backoff  time.Duration
	RetryAt  time.Time
	// Fallback, under --runtime auto, is why the next instance does not
	// run from its image (no registry could be reached, or imagePullPolicy
	// Never and the image is not in the store): it runs under the process
	// runtime or simulated.
	Fallback string
}

// podState is everything the agent keeps about one pod.
type podState struct {
	// StartTime is when the agent first acknowledged the pod (status.startTime).
	StartTime time.Time
	// PodIP is the pod's address; NetworkReady is true once it is known.
	// NetworkError is why it is not known yet (no podCIDR); a sandbox that
	// failed is retried at NetworkRetryAt, NetworkDelay after the failure.
	PodIP          string
	NetworkReady   bool
	NetworkError   string
	NetworkRetryAt time.Time
	NetworkDelay   time.Duration
	// VolumesReady is true once the pod's volumes are prepared for process
	// containers; VolumeError and VolumeRetryAt describe the last failure.
	VolumesReady  bool
	VolumeError   string
	VolumeRetryAt time.Time
	VolumeDelay   time.Duration
	// DeadlineExceeded is set once activeDeadlineSeconds has passed.
	DeadlineExceeded bool
	// Terminal is set once a terminal phase has been written.
	Terminal bool
	// Announced holds the keys of one-shot events already emitted.
	Announced map[string]bool

	Containers map[string]*containerState
}

func newPodState() *podState {
	return &podState{Containers: map[string]*containerState{}, Announced: map[string]bool{}}
}

func (s *podState) container(name string) *containerState {
	cs, ok := s.Containers[name]
	if !ok {
		cs = &containerState{}
		s.Containers[name] = cs
	}
	return cs
}

// anyRunning reports whether any instance of the pod is running.
func (s *podState) anyRunning() bool {
	for _, cs := range s.Containers {
		if cs.Current != nil && cs.Current.Running {
			return true
		}
	}
	return false
}

// peek returns the state of a container without recording a new one.
func (s *podState) peek(name string) *containerState {
	if cs, ok := s.Containers[name]; ok {
		return cs
	}
	return &containerState{}
}

package node

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/sim"
)

// Event reasons, equal to the kubelet's.
const (
	reasonCreated          = "Created"
	reasonStarted          = "Started"
	reasonFailed           = "Failed"
	reasonKilling          = "Killing"
	reasonBackOff          = "BackOff"
	reasonUnhealthy        = "Unhealthy"
	reasonErrImageNeverPul = "ErrImageNeverPull"
	reasonFailedMount      = "FailedMount"
	reasonNetworkNotReady  = "NetworkNotReady"
	// reasonFailedSandbox is the kubelet's event when a pod's sandbox
	// (here: its network namespace and CNI ADD) cannot be created.
	reasonFailedSandbox = "FailedCreatePodSandBox"
	// reasonNoPodNetwork is quartet's: the pod shares the host's network.
	reasonNoPodNetwork     = "NoPodNetwork"
	reasonDeadlineExceeded = "DeadlineExceeded"
	reasonFailedSync       = "FailedSync"
	reasonFailedKillPod    = "FailedKillPod"
	reasonStarting         = "Starting"
	reasonNodeReady        = "NodeReady"
	reasonRegisteredNode   = "RegisteredNode"
	reasonCreateConfigErr  = "CreateContainerConfigError"
	reasonCrashLoopBackOff = "CrashLoopBackOff"
	reasonStartError       = "StartError"
	reasonContainerCreate  = "ContainerCreating"
	reasonPodInitializing  = "PodInitializing"
	reasonStatusUnknown    = "ContainerStatusUnknown"
	// The kubelet's image reasons (events and waiting states).
	reasonPulling          = "Pulling"
	reasonPulled           = "Pulled"
	reasonInspectFailed    = "InspectFailed"
	reasonErrImagePull     = "ErrImagePull"
	reasonImagePullBackOff = "ImagePullBackOff"
	reasonInvalidImageName = "InvalidImageName"
	// reasonFailedPullSecret is the kubelet's event when an image pull
	// secret cannot be read.
	reasonFailedPullSecret = "FailedToRetrieveImagePullSecret"
)

// Event reasons of quartet's own, for what a kubelet never does.
const (
	// reasonSimulated: --runtime auto runs a container simulated because it
	// has no command and its image is not in the image map.
	reasonSimulated = "Simulated"
	// reasonNotIsolated: process containers run without their own
	// namespaces because quartet is not root.
	reasonNotIsolated = "ProcessNotIsolated"
	// reasonBadAnnotation: a quartet.dev/sim-* annotation does not parse.
	reasonBadAnnotation = "InvalidSimAnnotation"
	// reasonRuntimeFallback: --runtime auto runs a container under the
	// process runtime or simulated because its image cannot be had.
	reasonRuntimeFallback = "RuntimeFallback"
)

const (
	// deadlineMessage is the kubelet's status message for activeDeadlineSeconds.
	deadlineMessage = "Pod was active on the node longer than the specified deadline"

	initialBackoff = 10 * time.Second
	maxBackoff     = 300 * time.Second
	// minGracePeriod is the shortest time between SIGTERM and SIGKILL, as in
	// the kubelet.
	minGracePeriod = 2 * time.Second
	defaultGrace   = 30 * time.Second
	// retryUnrunnable is how often a container whose image cannot be run is
	// looked at again (the image map may have changed).
	retryUnrunnable = 20 * time.Second
	// The kubelet's image pull back-off, and how long a failed pull shows
	// ErrImagePull before ImagePullBackOff.
	initialPullBackoff = 10 * time.Second
	maxPullBackoff     = 300 * time.Second
	errImagePullShown  = 2 * time.Second
)

// planInput is everything planPod looks at.
type planInput struct {
	Pod *v1.Pod
	// Gone is true once the pod has been deleted from the API.
	Gone   bool
	Now    time.Time
	HostIP string
	State  *podState
	// Sim is what the pod's quartet.dev/sim-* annotations ask for.
	Sim sim.Behaviour
	// OldStatus is the status last written (or the API's); conditions keep
	// their transition times from it.
	OldStatus *v1.PodStatus
}

type startAction struct {
	Name           string
	Kind           runtime.Kind
	BackoffDelay   time.Duration
	BackoffUpdated time.Time
}

type stopAction struct {
	Name string
	// Grace is the time between SIGTERM and SIGKILL.
	Grace time.Duration
	// Message is the Killing event's message.
	Message string
	// Force sends SIGKILL now.
	Force bool
	// Restart restarts the container once stopped whatever its restart policy.
	Restart bool
}

type simExit struct {
	Name string
	Code int32
}

// plannedEvent is an event the plan asks for. A non-empty Key makes it
// one-shot: the agent records the key and the plan does not ask again.
type plannedEvent struct {
	Key       string
	Container string // "" for the pod itself
	Type      string
	Reason    string
	Message   string
}

// podPlan is what planPod decides.
type podPlan struct {
	PrepareNetwork bool
	PrepareVolumes bool
	// Pulls are the containers whose image to ensure (check or pull) for
	// the oci runtime before they start.
	Pulls    []string
	Starts   []startAction
	Stops    []stopAction
	SimExits []simExit
	Events   []plannedEvent
	// Status is the status to write; nil when the pod is gone.
	Status *v1.PodStatus
	// SetDeadlineExceeded records that activeDeadlineSeconds has passed.
	SetDeadlineExceeded bool
	// Terminal is true when Status has a terminal phase.
	Terminal bool
	// Release frees the pod's IP and volumes: nothing runs any more.
	Release bool
	// Delete is the final delete of a terminated pod.
	Delete bool
	// Forget drops the pod: it is gone from the API and nothing runs.
	Forget       bool
	RequeueAfter time.Duration
}

func (p *podPlan) hasRuntimeActions() bool {
	return p.PrepareNetwork || p.PrepareVolumes || len(p.Pulls) > 0 || len(p.Starts) > 0 || len(p.Stops) > 0 || len(p.SimExits) > 0
}

// waker collects the earliest time the pod must be looked at again.
type waker struct {
	now  time.Time
	next time.Time
}

func (w *waker) at(t time.Time) {
	if !t.After(w.now) {
		t = w.now.Add(time.Millisecond)
	}
	if w.next.IsZero() || t.Before(w.next) {
		w.next = t
	}
}

func (w *waker) after() time.Duration {
	if w.next.IsZero() {
		return 0
	}
	return w.next.Sub(w.now)
}

// specContainer is a container of the pod spec with its role.
type specContainer struct {
	c         *v1.Container
	init      bool
	sidecar   bool
	ephemeral bool
}

func podContainers(pod *v1.Pod) []specContainer {
	out := make([]specContainer, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		out = append(out, specContainer{c: c, init: true, sidecar: isSidecar(c)})
	}
	for i := range pod.Spec.Containers {
		out = append(out, specContainer{c: &pod.Spec.Containers[i]})
	}
	return out
}

// ephemeralContainers are the pod's ephemeral containers (`kubectl debug`)
// as containers: they run once, are never restarted, and take no part in
// the pod's phase or readiness.
func ephemeralContainers(pod *v1.Pod) []specContainer {
	out := make([]specContainer, 0, len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.EphemeralContainers {
		c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		out = append(out, specContainer{c: &c, ephemeral: true})
	}
	return out
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// shouldRestart says whether a container that exited with code restarts:
// the container's restart rules first, then its own restartPolicy, then the
// pod's (the kubelet's order with ContainerRestartRules on).
func shouldRestart(c *v1.Container, spec *v1.PodSpec, code int32) bool {
	if c.RestartPolicy != nil {
		for _, rule := range c.RestartPolicyRules {
			if rule.ExitCodes == nil {
				continue
			}
			in := false
			for _, v := range rule.ExitCodes.Values {
				if v == code {
					in = true
				}
			}
			matched := (rule.ExitCodes.Operator == v1.ContainerRestartRuleOnExitCodesOpIn && in) ||
				(rule.ExitCodes.Operator == v1.ContainerRestartRuleOnExitCodesOpNotIn && !in)
			if matched && rule.Action == v1.ContainerRestartRuleActionRestart {
				return true
			}
		}
		switch *c.RestartPolicy {
		case v1.ContainerRestartPolicyAlways:
			return true
		case v1.ContainerRestartPolicyOnFailure:
			return code != 0
		case v1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch spec.RestartPolicy {
	case v1.RestartPolicyOnFailure:
		return code != 0
	case v1.RestartPolicyNever:
		return false
	}
	return true
}

// formatPod renders a pod the way kubelet messages do: name_namespace(uid).
func formatPod(pod *v1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

func gracePeriod(pod *v1.Pod, deleting bool) time.Duration {
	g := defaultGrace
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if deleting && pod.DeletionGracePeriodSeconds != nil {
		g = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if g < minGracePeriod {
		g = minGracePeriod
	}
	return g
}

func probeGrace(pod *v1.Pod, probe *v1.Probe) time.Duration {
	if probe != nil && probe.TerminationGracePeriodSeconds != nil {
		g := time.Duration(*probe.TerminationGracePeriodSeconds) * time.Second
		if g < minGracePeriod {
			g = minGracePeriod
		}
		return g
	}
	return gracePeriod(pod, false)
}

func probeDelay(p *v1.Probe) time.Duration {
	if p == nil {
		return 0
	}
	return time.Duration(p.InitialDelaySeconds) * time.Second
}

// simStarted and simReady decide probe outcomes for simulated containers:
// started once the startup probe's initial delay has passed, ready once the
// readiness probe's has too, unless the pod says quartet.dev/sim-ready=false.
func simStartedAt(c *v1.Container, a *attempt) time.Time {
	return a.StartedAt.Add(probeDelay(c.StartupProbe))
}

func simReadyAt(c *v1.Container, a *attempt) time.Time {
	t := simStartedAt(c, a)
	if r := a.StartedAt.Add(probeDelay(c.ReadinessProbe)); r.After(t) {
		t = r
	}
	return t
}

// containerView is the plan's verdict on one container, from which its
// status is built.
type containerView struct {
	// backoff, when set, is the waiting state shown while the container
	// waits to be (re)started: CrashLoopBackOff, or its image's
	// ErrImagePull, ImagePullBackOff, InvalidImageName, ErrImageNeverPull.
	backoff *waitingReason
	started bool
	ready   bool
}

// planPod is the pod state machine: from the pod, what the agent knows of
// its containers and the time, it decides what to start, stop and report.
// It makes no API calls and reads no clock.
func planPod(in planInput) podPlan {
	var p podPlan
	pod, st, now := in.Pod, in.State, in.Now
	w := waker{now: now}
	containers := podContainers(pod)
	views := make(map[string]*containerView, len(containers))
	for _, sc := range containers {
		v := &containerView{}
		if cs := st.Containers[sc.c.Name]; cs != nil && cs.Current != nil && cs.Current.Running {
			a := cs.Current
			if a.Sim {
				v.started = !now.Before(simStartedAt(sc.c, a))
				v.ready = v.started && !in.Sim.Unready && !now.Before(simReadyAt(sc.c, a))
			} else {
				v.started = a.Started
				v.ready = a.Started && a.Ready
			}
		}
		views[sc.c.Name] = v
	}
	for _, sc := range ephemeralContainers(pod) {
		// Only its image's waiting state (oci) is shown from the plan.
		views[sc.c.Name] = &containerView{}
	}
	announce := func(e plannedEvent) {
		if e.Key != "" && st.Announced[e.Key] {
			return
		}
		p.Events = append(p.Events, e)
	}

	terminating := in.Gone || pod.DeletionTimestamp != nil
	apiTerminal := pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
	deadline := st.DeadlineExceeded
	if !deadline && !terminating && !apiTerminal && !st.Terminal && pod.Spec.ActiveDeadlineSeconds != nil && !st.StartTime.IsZero() {
		d := st.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second)
		if !now.Before(d) {
			deadline = true
			p.SetDeadlineExceeded = true
			announce(plannedEvent{Key: "deadline", Type: v1.EventTypeNormal, Reason: reasonDeadlineExceeded, Message: deadlineMessage})
		} else {
			w.at(d)
		}
	}
	stopping := terminating || deadline || apiTerminal || st.Terminal

	// What should run.
	finished := false // every regular container is done for good, or init failed for good
	if !stopping {
		finished = planRun(in, containers, views, &p, &w, announce)
	}

	// What should stop.
	if stopping || finished {
		grace := gracePeriod(pod, terminating)
		regularRunning := false
		for _, sc := range containers {
			if !sc.sidecar {
				if cs := st.Containers[sc.c.Name]; cs != nil && cs.Current != nil && cs.Current.Running {
					regularRunning = true
				}
			}
		}
		for _, sc := range containers {
			// Sidecars stop after the regular containers, as the kubelet does it.
			if sc.sidecar && regularRunning {
				continue
			}
			planStop(sc.c.Name, st.Containers[sc.c.Name], grace, fmt.Sprintf("Stopping container %s", sc.c.Name), now, &p, &w)
		}
		for _, sc := range ephemeralContainers(pod) {
			planStop(sc.c.Name, st.Containers[sc.c.Name], grace, fmt.Sprintf("Stopping container %s", sc.c.Name), now, &p, &w)
		}
	}

	running := st.anyRunning()
	if !running && len(p.Starts) == 0 && len(p.SimExits) == 0 {
		if in.Gone {
			p.Forget = true
		}
	}
	if !in.Gone {
		status := buildStatus(in, containers, views, stopping && !running, deadline)
		p.Status = status
		p.Terminal = status.Phase == v1.PodSucceeded || status.Phase == v1.PodFailed
		if p.Terminal && !running {
			p.Release = true
			if pod.DeletionTimestamp != nil {
				p.Delete = true
			}
		}
	} else if !running {
		p.Release = true
	}
	p.RequeueAfter = w.after()
	return p
}

// planStop asks a running container to stop, and escalates to SIGKILL once
// its grace period is over.
func planStop(name string, cs *containerState, grace time.Duration, message string, now time.Time, p *podPlan, w *waker) {
	if cs == nil || cs.Current == nil || !cs.Current.Running {
		return
	}
	a := cs.Current
	switch {
	case a.StopSentAt.IsZero():
		p.Stops = append(p.Stops, stopAction{Name: name, Grace: grace, Message: message})
		w.at(now.Add(grace))
	case !a.KillSent && !now.Before(a.KillAt):
		p.Stops = append(p.Stops, stopAction{Name: name, Force: true})
		w.at(now.Add(time.Second))
	case !a.KillSent:
		w.at(a.KillAt)
	default:
		w.at(now.Add(time.Second))
	}
}

// planRun decides starts, restarts, probe-driven kills and simulated exits
// for a pod that is not stopping. It reports whether the pod has finished:
// its regular containers are all done for good, or an init container failed
// for good.
func planRun(in planInput, containers []specContainer, views map[string]*containerView, p *podPlan, w *waker, announce func(plannedEvent)) bool {
	pod, st, now := in.Pod, in.State, in.Now

	// The sandbox first: without an IP nothing starts.
	if !st.NetworkReady {
		if now.Before(st.NetworkRetryAt) {
			w.at(st.NetworkRetryAt)
			return false
		}
		p.PrepareNetwork = true
		if st.NetworkError != "" {
			announce(plannedEvent{Key: "network", Type: v1.EventTypeWarning, Reason: reasonNetworkNotReady, Message: st.NetworkError})
		}
		w.at(now.Add(time.Second))
		return false
	}

	// want reports whether a container that is not running should be
	// started now, and records the back-off view when it must wait.
	want := func(sc specContainer, cs *containerState) bool {
		a := cs.Current
		if a == nil {
			return true
		}
		if a.Running {
			return false
		}
		restart := a.RestartAfterStop || sc.sidecar || shouldRestart(sc.c, &pod.Spec, a.ExitCode)
		if sc.init && !sc.sidecar && a.ExitCode == 0 && !a.RestartAfterStop {
			restart = false // a regular init container that succeeded is done
		}
		if !restart {
			return false
		}
		// Crash-loop back-off, measured from when the instance finished.
		if cs.BackoffDelay > 0 && a.FinishedAt.Sub(cs.BackoffUpdated) <= 2*maxBackoff {
			until := a.FinishedAt.Add(cs.BackoffDelay)
			if now.Before(until) {
				views[sc.c.Name].backoff = &waitingReason{
					Reason:  reasonCrashLoopBackOff,
					Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", cs.BackoffDelay, sc.c.Name, formatPod(pod)),
				}
				announce(plannedEvent{
					Key: "backoff/" + sc.c.Name + "/" + a.ID, Container: sc.c.Name, Type: v1.EventTypeWarning, Reason: reasonBackOff,
					Message: fmt.Sprintf("Back-off restarting failed container %s in pod %s", sc.c.Name, formatPod(pod)),
				})
				w.at(until)
				return false
			}
		}
		return true
	}
	start := func(sc specContainer, cs *containerState) {
		if !cs.RetryAt.IsZero() && now.Before(cs.RetryAt) {
			w.at(cs.RetryAt)
			return
		}
		switch {
		case cs.Unrunnable != "":
			announce(plannedEvent{
				Key: "unrunnable/" + sc.c.Name, Container: sc.c.Name, Type: v1.EventTypeWarning,
				Reason: reasonErrImageNeverPul, Message: cs.Unrunnable,
			})
			w.at(now.Add(retryUnrunnable))
			return
		case cs.NextKind != runtime.KindSim:
			// Real containers need their volumes (simulated ones do not).
			if !st.VolumesReady {
				if now.Before(st.VolumeRetryAt) {
					w.at(st.VolumeRetryAt)
					return
				}
				p.PrepareVolumes = true
				w.at(now.Add(time.Second))
				return
			}
		}
		if cs.NextKind == runtime.KindOCI && !planImage(pod, sc.c, cs, now, views[sc.c.Name], p, w, announce) {
			return
		}
		act := startAction{Name: sc.c.Name, Kind: cs.NextKind}
		if a := cs.Current; a != nil && !a.Running {
			// The delay before the restart after this one.
			if cs.BackoffDelay == 0 || a.FinishedAt.Sub(cs.BackoffUpdated) > 2*maxBackoff {
				act.BackoffDelay = initialBackoff
			} else {
				act.BackoffDelay = min(2*cs.BackoffDelay, maxBackoff)
			}
			act.BackoffUpdated = now
		} else {
			act.BackoffDelay, act.BackoffUpdated = cs.BackoffDelay, cs.BackoffUpdated
		}
		p.Starts = append(p.Starts, act)
	}
	// running checks a running container: probes, spec changes, simulated exits.
	running := func(sc specContainer, cs *containerState) {
		a := cs.Current
		if a.Sim {
			if startedAt := simStartedAt(sc.c, a); now.Before(startedAt) {
				w.at(startedAt)
			} else if readyAt := simReadyAt(sc.c, a); !in.Sim.Unready && now.Before(readyAt) {
				w.at(readyAt)
			}
		}
		if !a.StopSentAt.IsZero() {
			planStop(sc.c.Name, cs, 0, "", now, p, w)
			return
		}
		restartable := sc.sidecar || shouldRestart(sc.c, &pod.Spec, 1)
		suffix := ""
		if restartable {
			suffix = ", will be restarted"
		}
		switch {
		case a.SpecHash != "" && a.SpecHash != containerHash(sc.c):
			p.Stops = append(p.Stops, stopAction{Name: sc.c.Name, Grace: gracePeriod(pod, false), Restart: true,
				Message: fmt.Sprintf("Container %s definition changed, will be restarted", sc.c.Name)})
			return
		case a.LivenessFailed:
			p.Stops = append(p.Stops, stopAction{Name: sc.c.Name, Grace: probeGrace(pod, sc.c.LivenessProbe),
				Message: fmt.Sprintf("Container %s failed liveness probe%s", sc.c.Name, suffix)})
			return
		case a.StartupFailed:
			p.Stops = append(p.Stops, stopAction{Name: sc.c.Name, Grace: probeGrace(pod, sc.c.StartupProbe),
				Message: fmt.Sprintf("Container %s failed startup probe%s", sc.c.Name, suffix)})
			return
		}
		if a.Sim && !sc.sidecar {
			var code *int32
			runFor := time.Duration(0)
			if sc.init {
				zero := int32(0)
				code = &zero
			} else if in.Sim.ExitCode != nil {
				code, runFor = in.Sim.ExitCode, in.Sim.RunFor
			}
			if code != nil {
				due := a.StartedAt.Add(runFor)
				if !now.Before(due) {
					p.SimExits = append(p.SimExits, simExit{Name: sc.c.Name, Code: *code})
				} else {
					w.at(due)
				}
			}
		}
	}

	// Running sidecars first: whether they have started gates the init
	// containers after them.
	for _, sc := range containers {
		if sc.sidecar {
			if cs := st.peek(sc.c.Name); cs.Current != nil && cs.Current.Running {
				running(sc, cs)
			}
		}
	}
	// A pod whose regular containers have run is initialized for good (a
	// restarting sidecar does not undo that).
	regularRan := false
	for _, sc := range containers {
		if !sc.init {
			if cs := st.Containers[sc.c.Name]; cs != nil && cs.Current != nil {
				regularRan = true
			}
		}
	}
	// Init containers, in order: a regular one must succeed before the next
	// starts, a sidecar must have started.
	initialized := true
	for _, sc := range containers {
		if !sc.init || regularRan {
			break
		}
		cs := st.peek(sc.c.Name)
		if sc.sidecar {
			switch {
			case cs.Current != nil && cs.Current.Running:
				if views[sc.c.Name].started {
					continue
				}
			case cs.Current != nil:
				// A sidecar that crashed restarts; the sequence goes on.
				if want(sc, cs) {
					start(sc, cs)
				}
				continue
			default:
				start(sc, cs)
			}
			initialized = false
			break
		}
		if cs.Current != nil && cs.Current.Running {
			running(sc, cs)
			initialized = false
			break
		}
		if cs.Current != nil && cs.Current.ExitCode == 0 && !cs.Current.RestartAfterStop {
			continue
		}
		if cs.Current != nil && !cs.Current.RestartAfterStop && !shouldRestart(sc.c, &pod.Spec, cs.Current.ExitCode) {
			return true // failed for good: the pod fails
		}
		if want(sc, cs) {
			start(sc, cs)
		}
		initialized = false
		break
	}
	if !initialized {
		return false
	}
	// Sidecars that are not running restart even after initialization.
	for _, sc := range containers {
		if sc.sidecar {
			if cs := st.peek(sc.c.Name); (cs.Current == nil || !cs.Current.Running) && !hasStart(p, sc.c.Name) && want(sc, cs) {
				start(sc, cs)
			}
		}
	}
	done := true
	for _, sc := range containers {
		if sc.init {
			continue
		}
		cs := st.peek(sc.c.Name)
		if cs.Current != nil && cs.Current.Running {
			running(sc, cs)
			done = false
			continue
		}
		if want(sc, cs) {
			start(sc, cs)
			done = false
			continue
		}
		if views[sc.c.Name].backoff != nil {
			done = false
		}
	}
	// Ephemeral containers start once the pod has started, and never again.
	for _, sc := range ephemeralContainers(pod) {
		if cs := st.peek(sc.c.Name); cs.Current == nil {
			start(sc, cs)
		}
	}
	return done
}

// planImage decides whether a container's image is ready for a start under
// the oci runtime; when it is not, it asks for a pull or shows why the
// container waits (the kubelet's image states and back-off).
func planImage(pod *v1.Pod, c *v1.Container, cs *containerState, now time.Time, view *containerView, p *podPlan, w *waker, announce func(plannedEvent)) bool {
	ip := &cs.Pull
	if ip.Image != c.Image {
		// Nothing known of this image yet.
		p.Pulls = append(p.Pulls, c.Name)
		w.at(now.Add(time.Second))
		return false
	}
	switch {
	case ip.Ready != "":
		return true
	case ip.Pulling:
		return false // the pull wakes the pod when it ends
	case ip.Reason != "" && now.Before(ip.RetryAt):
		view.backoff = &waitingReason{Reason: ip.Reason, Message: ip.Message}
		if ip.Reason == reasonErrImagePull {
			if shown := ip.FailedAt.Add(errImagePullShown); now.Before(shown) {
				w.at(shown)
			} else {
				image := withDefaultTag(c.Image)
				view.backoff = &waitingReason{Reason: reasonImagePullBackOff,
					Message: fmt.Sprintf("Back-off pulling image %q: %s: %s", image, reasonErrImagePull, ip.Message)}
				key := fmt.Sprintf("pullbackoff/%s/%d", c.Name, ip.FailedAt.UnixNano())
				announce(plannedEvent{Key: key, Container: c.Name, Type: v1.EventTypeNormal, Reason: reasonBackOff,
					Message: fmt.Sprintf("Back-off pulling image %q", image)})
				announce(plannedEvent{Key: key + "/failed", Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonFailed,
					Message: "Error: " + reasonImagePullBackOff})
			}
		}
		w.at(ip.RetryAt)
		return false
	}
	p.Pulls = append(p.Pulls, c.Name)
	w.at(now.Add(time.Second))
	return false
}

// withDefaultTag is an image reference as the kubelet names it in its
// image messages: ":latest" added when it has neither tag nor digest.
func withDefaultTag(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image
	}
	return image + ":latest"
}

func hasStart(p *podPlan, name string) bool {
	for _, s := range p.Starts {
		if s.Name == name {
			return true
		}
	}
	return false
}

// containerHash identifies the mutable part of a container's spec (its
// image): an instance started from another hash is restarted.
func containerHash(c *v1.Container) string {
	h := fnv.New64a()
	h.Write([]byte(c.Image))
	return strconv.FormatUint(h.Sum64(), 16)
}

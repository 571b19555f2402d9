package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/images"
	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/internal/node/runtime/sim"
	"quartet.dev/quartet/internal/node/sandbox"
)

// podRecord is the agent's side of one pod. Its worker owns state,
// instances and lastStatus (it runs one sync at a time); mu guards what
// informer handlers, probers and exit callbacks touch.
type podRecord struct {
	uid    types.UID
	agent  *agent
	dir    string
	worker *podWorker

	mu      sync.Mutex
	pod     *v1.Pod
	gone    bool
	killed  bool
	results map[string]*probeResults // by container name, for the current instance
	probers map[string]*probeSet

	state *podState
	// instances are written by the sync worker under mu.
	instances  map[string]runtime.Instance
	lastStatus *v1.PodStatus
	// served is the status the kubelet API answers from (under mu).
	served   *v1.PodStatus
	volumes  map[string]string // volume name -> host path
	etcFiles []runtime.Mount
	deleted  bool
	// sandbox is the pod's network namespace (under mu); nil for a pod on
	// the host's network.
	sandbox *sandbox.Sandbox
	// pulled are image pulls that ended, by container (under mu).
	pulled map[string]*pullResult
	// pause holds the namespaces the pod's isolated containers share
	// (under mu; see joinPod).
	pause *runc.Pause
}

func newPodRecord(a *agent, pod *v1.Pod) *podRecord {
	return &podRecord{
		uid:       pod.UID,
		agent:     a,
		dir:       filepath.Join(a.dir, "pods", string(pod.UID)),
		worker:    newPodWorker(a.host, pod.UID),
		pod:       pod,
		results:   map[string]*probeResults{},
		probers:   map[string]*probeSet{},
		instances: map[string]runtime.Instance{},
	}
}

// kill ends every instance of the pod at once (SIGKILL), for RemoveNode;
// an instance a sync starts afterwards is killed as it is recorded.
func (r *podRecord) kill() {
	r.stopProbes()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	for _, inst := range r.instances {
		_ = inst.Signal(syscall.SIGKILL)
	}
}

func (r *podRecord) stopProbes() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, ps := range r.probers {
		ps.stop()
		delete(r.probers, name)
	}
}

func (r *podRecord) containerDir(name string) string {
	return filepath.Join(r.dir, "containers", name)
}

// logPath is where an instance's log lives: one file per container ID, so
// the current and the previous instance can both be served.
func (r *podRecord) logPath(container, id string) string {
	_, hex, _ := strings.Cut(id, "://")
	return filepath.Join(r.containerDir(container), hex+".log")
}

// syncPod brings one pod's containers in line with its spec and writes its
// status: observe, plan, act, repeated until the plan asks for nothing new,
// then one status write.
func (h *Host) syncPod(ctx context.Context, uid types.UID) (time.Duration, error) {
	rec := h.record(uid)
	if rec == nil || rec.agent.stopped() || rec.deleted {
		return 0, nil
	}
	rec.mu.Lock()
	pod, gone := rec.pod, rec.gone
	rec.mu.Unlock()
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "node", rec.agent.name)
	ctx = klog.NewContext(ctx, logger)
	now := h.clock.Now()

	if rec.state == nil {
		rec.state = stateFromStatus(pod, now)
		rec.lastStatus = pod.Status.DeepCopy()
		rec.mu.Lock()
		rec.served = rec.lastStatus
		rec.mu.Unlock()
		h.adoptSim(rec, pod)
	}
	st := rec.state
	if st.StartTime.IsZero() && !gone && pod.DeletionTimestamp == nil {
		st.StartTime = now
	}
	behaviour, berr := sim.ParseBehaviour(pod.Annotations)
	if berr != nil && !st.Announced["annotation"] {
		h.podEvent(rec, pod, plannedEvent{Key: "annotation", Type: v1.EventTypeWarning, Reason: reasonBadAnnotation, Message: berr.Error()})
	}
	in := planInput{Pod: pod, Gone: gone, Now: now, HostIP: h.cfg.NodeIP, State: st, Sim: behaviour, OldStatus: rec.lastStatus}

	var plan podPlan
	for i := 0; ; i++ {
		h.observe(ctx, rec, pod)
		plan = planPod(in)
		h.emit(rec, pod, plan.Events)
		if plan.SetDeadlineExceeded {
			st.DeadlineExceeded = true
		}
		if !plan.hasRuntimeActions() || i == 4 {
			break
		}
		h.execute(ctx, rec, pod, plan, now)
	}

	if plan.Status != nil && !rec.deleted {
		if err := h.writeStatus(ctx, rec, pod, plan.Status); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				// The pod is gone or was replaced by one of the same name.
				rec.mu.Lock()
				rec.gone = true
				rec.mu.Unlock()
				return time.Second, nil
			}
			return 0, err
		}
		if plan.Terminal {
			st.Terminal = true
		}
	}
	if plan.Release {
		rec.stopProbes()
		rec.agent.releaseIP(rec.uid)
		h.teardownSandbox(ctx, rec)
	}
	if plan.Delete && !rec.deleted {
		err := h.writer.DeleteFinal(ctx, pod)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return 0, err
		}
		rec.deleted = true
		plan.Forget = true
	}
	if plan.Forget {
		h.forget(rec)
		rec.stopProbes()
		h.teardownSandbox(ctx, rec)
		_ = os.RemoveAll(rec.dir)
		return 0, nil
	}
	return plan.RequeueAfter, nil
}

// observe refreshes the plan's view from the runtime: exits, probe results,
// and how each container would run now.
func (h *Host) observe(ctx context.Context, rec *podRecord, pod *v1.Pod) {
	st := rec.state
	now := h.clock.Now()
	for _, sc := range append(podContainers(pod), ephemeralContainers(pod)...) {
		name := sc.c.Name
		cs := st.container(name)
		h.collectPull(rec, pod, sc.c, now)
		if a := cs.Current; a != nil && a.Running {
			if inst := rec.instances[name]; inst != nil {
				if exit, ok := inst.Exited(); ok {
					a.Running = false
					a.ExitCode, a.Reason, a.FinishedAt = exit.ExitCode, exit.Reason, exit.FinishedAt
					a.Message = exit.Message
					if !a.Sim {
						a.Message = terminationMessage(rec, sc.c, a)
					}
					rec.mu.Lock()
					if ps := rec.probers[name]; ps != nil {
						ps.stop()
						delete(rec.probers, name)
					}
					rec.mu.Unlock()
				}
			}
			if a.Running && !a.Sim {
				rec.mu.Lock()
				if r := rec.results[name]; r != nil && r.id == a.ID {
					a.Started, a.Ready, a.LivenessFailed, a.StartupFailed = r.started, r.ready, r.livenessFailed, r.startupFailed
				}
				rec.mu.Unlock()
			}
		}
		cs.NextKind, cs.Unrunnable = h.classify(ctx, sc.c, cs)
	}
}

// classify decides which runtime runs a new instance of c: the first of
// the host's runtimes, in the mode's order, that can run it. When none can,
// it says why. The oci runtime runs every image it can have; under auto,
// one that cannot be had (no registry reachable) falls back to the next.
func (h *Host) classify(ctx context.Context, c *v1.Container, cs *containerState) (runtime.Kind, string) {
	msg := ""
	for _, kind := range h.order {
		if kind == runtime.KindOCI {
			if cs.Pull.Image == c.Image && cs.Pull.Fallback != "" {
				continue
			}
			return kind, ""
		}
		if _, err := h.runtimes[kind].Image(ctx, c.Image, c.Command); err != nil {
			if msg == "" {
				msg = err.Error()
			}
			continue
		}
		return kind, ""
	}
	return "", msg
}

// adoptSim takes over the simulated instances a previous run reported as
// running: nothing real ran, so nothing died, and the pod keeps running.
func (h *Host) adoptSim(rec *podRecord, pod *v1.Pod) {
	for name, cs := range rec.state.Containers {
		if a := cs.Current; a != nil && a.Running && a.Sim {
			inst := sim.Adopt(a.ID, a.StartedAt, h.clock, rec.worker.wake)
			rec.mu.Lock()
			rec.instances[name] = inst
			rec.mu.Unlock()
		}
	}
}

// execute carries out a plan's runtime actions.
func (h *Host) execute(ctx context.Context, rec *podRecord, pod *v1.Pod, plan podPlan, now time.Time) {
	st := rec.state
	if plan.PrepareNetwork {
		switch {
		case pod.Spec.HostNetwork:
			st.PodIP, st.NetworkReady = h.cfg.NodeIP, true
		case h.cfg.Network != nil:
			h.setupSandbox(ctx, rec, pod, now)
		default:
			if ip, err := rec.agent.allocateIP(rec.uid, pod.Status.PodIP); err != nil {
				st.NetworkError = err.Error()
			} else {
				st.PodIP, st.NetworkReady, st.NetworkError = ip, true, ""
			}
		}
	}
	if plan.PrepareVolumes {
		if err := h.prepareVolumes(ctx, rec, pod); err != nil {
			st.VolumeError = err.Error()
			st.VolumeDelay = nextDelay(st.VolumeDelay, 500*time.Millisecond, 2*time.Minute)
			st.VolumeRetryAt = now.Add(st.VolumeDelay)
			h.podEvent(rec, pod, plannedEvent{Type: v1.EventTypeWarning, Reason: reasonFailedMount, Message: err.Error()})
		} else {
			st.VolumesReady, st.VolumeError, st.VolumeDelay = true, "", 0
		}
	}
	for _, s := range plan.Stops {
		inst := rec.instances[s.Name]
		cs := st.Containers[s.Name]
		if inst == nil || cs == nil || cs.Current == nil {
			continue
		}
		a := cs.Current
		if s.Force {
			a.KillSent = true
			_ = inst.Signal(syscall.SIGKILL)
			continue
		}
		a.StopSentAt, a.KillAt = now, now.Add(s.Grace)
		a.RestartAfterStop = a.RestartAfterStop || s.Restart
		if s.Message != "" {
			h.podEvent(rec, pod, plannedEvent{Container: s.Name, Type: v1.EventTypeNormal, Reason: reasonKilling, Message: s.Message})
		}
		if c := findContainer(pod, s.Name); c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			// The hook runs first, within the grace period; SIGKILL still
			// comes at KillAt.
			go h.preStopThenTerm(ctx, rec, pod, c, inst, s.Grace)
			continue
		}
		if err := inst.Signal(syscall.SIGTERM); err != nil {
			h.podEvent(rec, pod, plannedEvent{Type: v1.EventTypeWarning, Reason: reasonFailedKillPod, Message: fmt.Sprintf("error killing pod: %v", err)})
		}
	}
	for _, name := range plan.Pulls {
		if c := findContainer(pod, name); c != nil {
			h.ensureImage(ctx, rec, pod, c, now)
		}
	}
	for _, x := range plan.SimExits {
		if inst, ok := rec.instances[x.Name].(*sim.Instance); ok {
			inst.Finish(x.Code, now)
		}
	}
	for _, s := range plan.Starts {
		h.startContainer(ctx, rec, pod, s, now)
	}
}

func nextDelay(cur, initial, max time.Duration) time.Duration {
	if cur == 0 {
		return initial
	}
	return min(2*cur, max)
}

// startContainer starts one instance of a container and records it.
func (h *Host) startContainer(ctx context.Context, rec *podRecord, pod *v1.Pod, act startAction, now time.Time) {
	st := rec.state
	cs := st.container(act.Name)
	c := findContainer(pod, act.Name)
	if c == nil {
		return
	}
	onExit := rec.worker.wake
	newAttempt := func(inst runtime.Instance, isSim bool) {
		if cs.Current != nil {
			cs.Last = cs.Current
			cs.RestartCount++
		}
		cs.Current = &attempt{ID: inst.ID(), Sim: isSim, StartedAt: inst.StartedAt(), Running: true, SpecHash: containerHash(c)}
		if kind := runtime.KindOf(inst.ID()); kind == runtime.KindOCI {
			cs.Current.Image, cs.Current.ImageID = images.Canonical(c.Image), cs.Pull.Ready
		}
		cs.BackoffDelay, cs.BackoffUpdated = act.BackoffDelay, act.BackoffUpdated
		cs.Waiting, cs.RetryAt, cs.RetryDelay = nil, time.Time{}, 0
		// The next start ensures its image again (imagePullPolicy Always
		// pulls before every start) and may find a registry again.
		cs.Pull.Ready, cs.Pull.Fallback = "", ""
		rec.mu.Lock()
		rec.instances[act.Name] = inst
		if rec.killed {
			_ = inst.Signal(syscall.SIGKILL)
		}
		rec.mu.Unlock()
	}
	waitConfig := func(reason, msg string) {
		cs.Waiting = &waitingReason{Reason: reason, Message: msg}
		cs.RetryDelay = nextDelay(cs.RetryDelay, initialBackoff, maxBackoff)
		cs.RetryAt = now.Add(cs.RetryDelay)
		h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeWarning, Reason: reasonFailed, Message: "Error: " + msg})
	}

	kind := act.Kind
	if kind == "" {
		kind, _ = h.classify(ctx, c, cs)
	}
	rt := h.runtimes[kind]
	if rt == nil {
		return
	}
	if kind != runtime.KindOCI && cs.Pull.Fallback != "" {
		h.podEvent(rec, pod, plannedEvent{Key: "fallback/" + act.Name + "/" + string(kind), Container: act.Name, Type: v1.EventTypeWarning, Reason: reasonRuntimeFallback,
			Message: fmt.Sprintf("Not running image %q: %s; the container runs %s instead (--runtime auto)", c.Image, cs.Pull.Fallback, fallbackWhat(kind))})
	}
	if kind == runtime.KindSim {
		// Simulated containers resolve neither env nor volumes.
		inst, _ := rt.Start(ctx, &runtime.ContainerSpec{PodUID: string(pod.UID), Name: act.Name}, onExit)
		newAttempt(inst, true)
		if h.mode == RuntimeAuto {
			h.podEvent(rec, pod, plannedEvent{Key: "simulated/" + act.Name, Container: act.Name, Type: v1.EventTypeNormal, Reason: reasonSimulated,
				Message: fmt.Sprintf("Container %s is simulated: it has no command and image %q is not in the image map, so no process runs", act.Name, c.Image)})
		}
		h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeNormal, Reason: reasonCreated, Message: "Container created"})
		h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeNormal, Reason: reasonStarted, Message: "Container started"})
		return
	}
	if kind == runtime.KindProcess && h.cfg.Network == nil && h.cfg.NoNetwork != "" && !pod.Spec.HostNetwork {
		h.podEvent(rec, pod, plannedEvent{Key: "nopodnetwork", Type: v1.EventTypeWarning, Reason: reasonNoPodNetwork,
			Message: "The pod shares the host's network (" + h.cfg.NoNetwork + "): its IP " + st.PodIP + " is not routed and its ports are the host's; reach it on 127.0.0.1"})
	}
	if kind == runtime.KindProcess && !h.isolated {
		h.podEvent(rec, pod, plannedEvent{Key: "notisolated", Type: v1.EventTypeWarning, Reason: reasonNotIsolated,
			Message: "Containers run as plain host processes, not as containers (" + h.isolationWhy + "): volumes are not mounted at their mountPath, the hostname, resolv.conf, filesystem and PID namespace are the host's, and resource limits are not enforced"})
	}
	image := c.Image
	if kind == runtime.KindOCI {
		image = cs.Pull.Ready
	}
	img, err := rt.Image(ctx, image, c.Command)
	if err != nil {
		if kind == runtime.KindOCI {
			// Removed from the store since it was ensured: ensure it again.
			cs.Pull.Ready = ""
			return
		}
		waitConfig(reasonCreateConfigErr, err.Error())
		return
	}
	var held []func()
	defer func() { runAll(held) }()
	spec, err := h.containerSpec(ctx, rec, pod, c, kind, img, &held)
	if err == nil {
		var warnings []string
		warnings, err = applySecurity(pod, c, spec, h.imageUser(kind, img), kind != runtime.KindProcess || h.isolated, h.seccompWhyNot(kind))
		for _, w := range warnings {
			h.podEvent(rec, pod, plannedEvent{Key: "security/" + act.Name + "/" + w, Container: act.Name, Type: v1.EventTypeWarning, Reason: reasonSecurityNotApplied, Message: w})
		}
	}
	if err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			waitConfig(reasonCreateConfigErr, ce.msg)
		} else {
			waitConfig(reasonCreateConfigErr, err.Error())
		}
		return
	}
	// The pod's namespaces (its pause container) only for a container
	// that is about to start.
	if h.containers != nil {
		if err := h.joinPod(ctx, rec, pod, spec); err != nil {
			h.podEvent(rec, pod, plannedEvent{Type: v1.EventTypeWarning, Reason: reasonFailedSandbox, Message: "Failed to create pod sandbox: " + err.Error()})
			cs.RetryDelay = nextDelay(cs.RetryDelay, initialBackoff, maxBackoff)
			cs.RetryAt = now.Add(cs.RetryDelay)
			return
		}
	}
	if target := targetPIDNamespace(rec, pod, act.Name); target != "" {
		spec.PIDNamespacePath = target
	}
	inst, err := rt.Start(ctx, spec, onExit)
	if err != nil {
		// The container was created but did not start: it ends at once
		// with the runtime's StartError, and restarts by its policy.
		msg := err.Error()
		if cs.Current != nil {
			cs.Last = cs.Current
			cs.RestartCount++
		}
		id := string(kind) + "://" + spec.ID
		cs.Current = &attempt{ID: id, StartedAt: now, FinishedAt: now, ExitCode: 128, Reason: reasonStartError, Message: msg, SpecHash: containerHash(c)}
		cs.BackoffDelay, cs.BackoffUpdated = act.BackoffDelay, act.BackoffUpdated
		cs.Waiting, cs.RetryAt, cs.RetryDelay = nil, time.Time{}, 0
		rec.mu.Lock()
		delete(rec.instances, act.Name)
		rec.mu.Unlock()
		h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeNormal, Reason: reasonCreated, Message: "Container created"})
		h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeWarning, Reason: reasonFailed, Message: "Error: " + msg})
		return
	}
	newAttempt(inst, false)
	h.pruneLogs(rec, act.Name, cs)
	h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeNormal, Reason: reasonCreated, Message: "Container created"})
	h.podEvent(rec, pod, plannedEvent{Container: act.Name, Type: v1.EventTypeNormal, Reason: reasonStarted, Message: "Container started"})
	h.startProbes(rec, pod, c, inst)
}

// imageUser is the user a container of this runtime kind runs as when its
// securityContext names none: the image's for oci ("" is root), root in a
// process container, quartet's own user for plain host processes.
func (h *Host) imageUser(kind runtime.Kind, img runtime.ImageConfig) string {
	switch {
	case kind == runtime.KindOCI:
		return img.User
	case kind == runtime.KindProcess && !h.isolated:
		return strconv.Itoa(os.Geteuid())
	}
	return "0"
}

// fallbackWhat says what a container runs under a runtime other than oci.
func fallbackWhat(kind runtime.Kind) string {
	if kind == runtime.KindSim {
		return "simulated (no process runs)"
	}
	return "as a process of the host's own programs (the process runtime)"
}

// pruneLogs keeps the logs of the current and the previous instance only.
func (h *Host) pruneLogs(rec *podRecord, name string, cs *containerState) {
	keep := map[string]bool{}
	for _, a := range []*attempt{cs.Current, cs.Last} {
		if a != nil {
			keep[filepath.Base(rec.logPath(name, a.ID))] = true
		}
	}
	entries, _ := os.ReadDir(rec.containerDir(name))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") && !keep[e.Name()] {
			_ = os.Remove(filepath.Join(rec.containerDir(name), e.Name()))
		}
	}
}

// targetPIDNamespace is the PID namespace an ephemeral container shares
// with its target (`kubectl debug --target`): that of the target's running
// process, or "" (its own) when it has none.
func targetPIDNamespace(rec *podRecord, pod *v1.Pod, name string) string {
	for _, ec := range pod.Spec.EphemeralContainers {
		if ec.Name != name || ec.TargetContainerName == "" {
			continue
		}
		rec.mu.Lock()
		inst := rec.instances[ec.TargetContainerName]
		rec.mu.Unlock()
		if inst == nil {
			return ""
		}
		if _, done := inst.Exited(); done {
			return ""
		}
		if p, ok := inst.(interface{ Pid() int }); ok && p.Pid() > 0 {
			return fmt.Sprintf("/proc/%d/ns/pid", p.Pid())
		}
	}
	return ""
}

// findContainer returns the container of the pod spec with this name (an
// ephemeral container as a container), or nil.
func findContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
			return &c
		}
	}
	return nil
}

// emit records the plan's events; keyed ones only once.
func (h *Host) emit(rec *podRecord, pod *v1.Pod, events []plannedEvent) {
	for _, e := range events {
		h.podEvent(rec, pod, e)
	}
}

func (h *Host) podEvent(rec *podRecord, pod *v1.Pod, e plannedEvent) {
	if e.Key != "" {
		if rec.state.Announced[e.Key] {
			return
		}
		rec.state.Announced[e.Key] = true
	}
	ref := &v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	if e.Container != "" {
		ref.FieldPath = fieldPath(pod, e.Container)
	}
	rec.agent.recorder.Event(ref, e.Type, e.Reason, e.Message)
}

func fieldPath(pod *v1.Pod, name string) string {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}

// writeStatus patches the pod's status when it differs from what was last
// written, with the pod's UID as a precondition.
func (h *Host) writeStatus(ctx context.Context, rec *podRecord, pod *v1.Pod, status *v1.PodStatus) error {
	if rec.lastStatus != nil && apiequality.Semantic.DeepEqual(rec.lastStatus, status) {
		return nil
	}
	base := rec.lastStatus
	if base == nil {
		base = &pod.Status
	}
	oldJSON, err := jsonMarshal(&v1.Pod{Status: *base})
	if err != nil {
		return err
	}
	newJSON, err := jsonMarshal(&v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: pod.UID}, Status: *status})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, v1.Pod{})
	if err != nil {
		return err
	}
	if err := h.writer.PatchStatus(ctx, pod, patch); err != nil {
		return err
	}
	rec.lastStatus = status
	rec.mu.Lock()
	rec.served = status
	rec.mu.Unlock()
	return nil
}

// stateFromStatus rebuilds what the agent knows of a pod from its API
// status, for a pod this host sees for the first time: on a fresh pod it is
// empty; after quartet restarted on the same data dir it holds the old
// instances. Process instances died with the old quartet and are recorded as
// ended (ContainerStatusUnknown, exit code 137, as a kubelet reports a
// container it cannot find); the restart policy then restarts them or fails
// the pod. Simulated instances never ran anything and are adopted as running.
func stateFromStatus(pod *v1.Pod, now time.Time) *podState {
	st := newPodState()
	s := &pod.Status
	if s.StartTime != nil {
		st.StartTime = s.StartTime.Time
	}
	if s.Phase == v1.PodSucceeded || s.Phase == v1.PodFailed {
		st.Terminal = true
	}
	if s.Reason == reasonDeadlineExceeded {
		st.DeadlineExceeded = true
	}
	if s.PodIP != "" {
		st.PodIP = s.PodIP
	}
	statuses := append(append([]v1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	for _, cstat := range statuses {
		cs := st.container(cstat.Name)
		cs.RestartCount = cstat.RestartCount
		if t := cstat.LastTerminationState.Terminated; t != nil {
			cs.Last = attemptFromTerminated(t)
		}
		switch {
		case cstat.State.Running != nil:
			a := &attempt{ID: cstat.ContainerID, StartedAt: cstat.State.Running.StartedAt.Time}
			if strings.HasPrefix(cstat.ContainerID, "oci://") {
				a.Image, a.ImageID = cstat.Image, cstat.ImageID
			}
			if strings.HasPrefix(cstat.ContainerID, "sim://") {
				a.Sim, a.Running = true, true
			} else {
				a.ExitCode, a.Reason, a.FinishedAt = 137, reasonStatusUnknown, now
				a.Message = "The container could not be located when quartet restarted. The container used to be Running"
			}
			cs.Current = a
		case cstat.State.Terminated != nil:
			cs.Current = attemptFromTerminated(cstat.State.Terminated)
		case cstat.State.Waiting != nil && cs.Last != nil:
			// Waiting to restart: the last instance is the current one.
			cs.Current, cs.Last = cs.Last, nil
		}
	}
	return st
}

func attemptFromTerminated(t *v1.ContainerStateTerminated) *attempt {
	return &attempt{
		ID: t.ContainerID, Sim: strings.HasPrefix(t.ContainerID, "sim://"),
		StartedAt: t.StartedAt.Time, FinishedAt: t.FinishedAt.Time,
		ExitCode: t.ExitCode, Reason: t.Reason, Message: t.Message,
	}
}

// preStopThenTerm runs a container's preStop hook and then sends SIGTERM.
// Simulated containers honour only the sleep action.
func (h *Host) preStopThenTerm(ctx context.Context, rec *podRecord, pod *v1.Pod, c *v1.Container, inst runtime.Instance, grace time.Duration) {
	hook := c.Lifecycle.PreStop
	_, isSim := inst.(*sim.Instance)
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var err error
	switch {
	case hook.Sleep != nil:
		select {
		case <-h.clock.After(time.Duration(hook.Sleep.Seconds) * time.Second):
		case <-hctx.Done():
		}
	case isSim:
	case hook.Exec != nil:
		var code int
		var out []byte
		code, out, err = h.exec(hctx, inst, hook.Exec.Command, grace)
		if err == nil && code != 0 {
			err = fmt.Errorf("command %q exited with %d: %s", strings.Join(hook.Exec.Command, " "), code, strings.TrimSpace(string(out)))
		}
	case hook.HTTPGet != nil:
		probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: hook.HTTPGet}}
		if ok, msg := h.probeOnce(hctx, rec, pod, c, inst, probe, grace); !ok {
			err = fmt.Errorf("%s", msg)
		}
	}
	if err != nil {
		h.podEventLocked(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: "FailedPreStopHook",
			Message: fmt.Sprintf("PreStopHook failed: %v", err)})
	}
	_ = inst.Signal(syscall.SIGTERM)
}

package node

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod condition reasons, equal to the kubelet's.
const (
	condReasonContainersNotReady       = "ContainersNotReady"
	condReasonContainersNotInitialized = "ContainersNotInitialized"
	condReasonPodCompleted             = "PodCompleted"
	condReasonPodFailed                = "PodFailed"
	condReasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

func metaTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}

// kubeletConditions are the pod conditions a kubelet owns; others (e.g.
// DisruptionTarget, readiness gates) are kept as they are.
var kubeletConditions = map[v1.PodConditionType]bool{
	v1.PodScheduled:              true,
	v1.PodReady:                  true,
	v1.PodInitialized:            true,
	v1.ContainersReady:           true,
	v1.PodReadyToStartContainers: true,
}

// buildStatus renders the pod status from the plan's view of the pod.
// podIsTerminal is true once the pod has been stopped for good (deleted,
// past its deadline) and nothing runs any more.
func buildStatus(in planInput, containers []specContainer, views map[string]*containerView, podIsTerminal, deadline bool) *v1.PodStatus {
	pod, st := in.Pod, in.State
	old := in.OldStatus
	if old == nil {
		old = &pod.Status
	}
	s := &v1.PodStatus{
		ObservedGeneration: pod.Generation,
		NominatedNodeName:  pod.Status.NominatedNodeName,
		QOSClass:           pod.Status.QOSClass,
		HostIP:             in.HostIP,
		HostIPs:            []v1.HostIP{{IP: in.HostIP}},
	}
	if s.QOSClass == "" {
		s.QOSClass = qosClass(pod)
	}
	if pod.Status.ResourceClaimStatuses != nil {
		s.ResourceClaimStatuses = pod.Status.ResourceClaimStatuses
	}
	if !st.StartTime.IsZero() {
		t := metaTime(st.StartTime)
		s.StartTime = &t
	}
	if st.NetworkReady && st.PodIP != "" {
		s.PodIP = st.PodIP
		s.PodIPs = []v1.PodIP{{IP: st.PodIP}}
	} else if pod.Status.PodIP != "" {
		s.PodIP, s.PodIPs = pod.Status.PodIP, pod.Status.PodIPs
	}

	defaultWaiting := reasonContainerCreate
	if len(pod.Spec.InitContainers) > 0 {
		defaultWaiting = reasonPodInitializing
	}
	oldStatuses := map[string]*v1.ContainerStatus{}
	for i := range old.InitContainerStatuses {
		oldStatuses[old.InitContainerStatuses[i].Name] = &old.InitContainerStatuses[i]
	}
	for i := range old.ContainerStatuses {
		oldStatuses[old.ContainerStatuses[i].Name] = &old.ContainerStatuses[i]
	}
	for _, sc := range containers {
		cs := st.peek(sc.c.Name)
		status := containerStatus(sc, cs, views[sc.c.Name], defaultWaiting)
		if o := oldStatuses[sc.c.Name]; o != nil && cs.Current == nil && cs.Waiting == nil && o.State.Terminated != nil {
			// A container the agent knows nothing of but whose status says it
			// ended (a pod finished before quartet restarted) keeps that status.
			status = *o.DeepCopy()
		}
		if sc.init {
			s.InitContainerStatuses = append(s.InitContainerStatuses, status)
		} else {
			s.ContainerStatuses = append(s.ContainerStatuses, status)
		}
	}

	for _, sc := range ephemeralContainers(pod) {
		cs := st.peek(sc.c.Name)
		running := cs.Current != nil && cs.Current.Running
		view := containerView{started: running}
		if v := views[sc.c.Name]; v != nil {
			view.backoff = v.backoff
		}
		status := containerStatus(sc, cs, &view, reasonContainerCreate)
		if o := findStatus(old.EphemeralContainerStatuses, sc.c.Name); o != nil && cs.Current == nil && cs.Waiting == nil && o.State.Terminated != nil {
			status = *o.DeepCopy()
		}
		s.EphemeralContainerStatuses = append(s.EphemeralContainerStatuses, status)
	}

	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses, podIsTerminal, st)
	if podIsTerminal {
		// As the kubelet finishes a pod it stopped: every container that
		// ran ends terminated, and the phase is terminal.
		unknown := func(list []v1.ContainerStatus, onlyStarted bool) {
			for i := range list {
				if list[i].State.Terminated != nil {
					continue
				}
				if onlyStarted && list[i].ContainerID == "" {
					continue
				}
				list[i].State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
					Reason: reasonStatusUnknown, Message: "The container could not be located when the pod was terminated", ExitCode: 137,
				}}
				list[i].Ready = false
			}
		}
		initialized := false
		for i := range s.ContainerStatuses {
			if s.ContainerStatuses[i].ContainerID != "" {
				initialized = true
			}
		}
		if initialized {
			unknown(s.ContainerStatuses, false)
		}
		unknown(s.InitContainerStatuses, true)
		if s.Phase == v1.PodPending || s.Phase == v1.PodRunning {
			s.Phase = v1.PodFailed
		}
	}
	if s.Phase != v1.PodSucceeded && s.Phase != v1.PodFailed {
		if old.Phase == v1.PodSucceeded || old.Phase == v1.PodFailed {
			s.Phase = old.Phase
		}
	}
	if s.Phase == old.Phase {
		s.Reason, s.Message = old.Reason, old.Message
	}
	if deadline {
		s.Phase, s.Reason, s.Message = v1.PodFailed, reasonDeadlineExceeded, deadlineMessage
	}
	// A pod never leaves a terminal phase.
	if (pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed) && s.Phase != pod.Status.Phase {
		s.Phase = pod.Status.Phase
	}

	// Conditions: the ones the kubelet does not own first, as they are.
	now := in.Now
	for _, c := range pod.Status.Conditions {
		if !kubeletConditions[c.Type] {
			s.Conditions = append(s.Conditions, c)
		}
	}
	add := func(c v1.PodCondition) {
		c.ObservedGeneration = pod.Generation
		c.LastTransitionTime = metaTime(now)
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
				c.LastProbeTime = o.LastProbeTime
			}
		}
		s.Conditions = append(s.Conditions, c)
	}
	sandbox := v1.PodCondition{Type: v1.PodReadyToStartContainers, Status: v1.ConditionFalse}
	if st.NetworkReady && (!podIsTerminal || st.anyRunning()) {
		sandbox.Status = v1.ConditionTrue
	}
	add(sandbox)
	all := append(append([]v1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	add(initializedCondition(pod, all, s.Phase))
	containersReady := containersReadyCondition(pod, all, s.Phase)
	add(readyCondition(pod, containersReady, s.Conditions))
	add(containersReady)
	add(v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionTrue})
	return s
}

func findStatus(list []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func containerStatus(sc specContainer, cs *containerState, view *containerView, defaultWaiting string) v1.ContainerStatus {
	c := sc.c
	status := v1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		RestartCount: cs.RestartCount,
		State:        v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: defaultWaiting}},
	}
	for _, m := range c.VolumeMounts {
		vm := v1.VolumeMountStatus{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly}
		if m.ReadOnly {
			mode := v1.RecursiveReadOnlyDisabled
			vm.RecursiveReadOnly = &mode
		}
		status.VolumeMounts = append(status.VolumeMounts, vm)
	}
	started := false
	a := cs.Current
	if a != nil {
		status.ContainerID = a.ID
		kind := "process"
		if a.Sim {
			kind = "sim"
		}
		status.ImageID = kind + "://" + c.Image
		if a.ImageID != "" {
			status.Image, status.ImageID = a.Image, a.ImageID
		}
		res := c.Resources.DeepCopy()
		res.Claims = nil
		status.Resources = res
		if len(c.Resources.Requests) > 0 {
			status.AllocatedResources = c.Resources.Requests.DeepCopy()
		}
		switch {
		case a.Running:
			status.State = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metaTime(a.StartedAt)}}
			if cs.Last != nil {
				status.LastTerminationState = v1.ContainerState{Terminated: cs.Last.terminated()}
			}
			started = view != nil && view.started
		case view != nil && view.backoff != nil:
			status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: view.backoff.Reason, Message: view.backoff.Message}}
			status.LastTerminationState = v1.ContainerState{Terminated: a.terminated()}
		case cs.Waiting != nil:
			status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: cs.Waiting.Reason, Message: cs.Waiting.Message}}
			status.LastTerminationState = v1.ContainerState{Terminated: a.terminated()}
		default:
			status.State = v1.ContainerState{Terminated: a.terminated()}
			if cs.Last != nil {
				status.LastTerminationState = v1.ContainerState{Terminated: cs.Last.terminated()}
			}
		}
	} else if cs.Waiting != nil {
		status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: cs.Waiting.Reason, Message: cs.Waiting.Message}}
		if cs.Last != nil {
			status.LastTerminationState = v1.ContainerState{Terminated: cs.Last.terminated()}
		}
	} else if view != nil && view.backoff != nil {
		status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: view.backoff.Reason, Message: view.backoff.Message}}
	} else if cs.Unrunnable != "" {
		status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reasonErrImageNeverPul, Message: cs.Unrunnable}}
	}
	status.Started = &started
	switch {
	case sc.init && !sc.sidecar:
		status.Ready = status.State.Terminated != nil && status.State.Terminated.ExitCode == 0
	default:
		status.Ready = started && status.State.Running != nil && view != nil && view.ready
	}
	return status
}

// podPhase is the kubelet's phase rule: Pending until every container has
// started, Running while any runs or will be restarted, then Succeeded or
// Failed.
func podPhase(pod *v1.Pod, initStatuses, statuses []v1.ContainerStatus, podIsTerminal bool, st *podState) v1.PodPhase {
	byName := map[string]*v1.ContainerStatus{}
	for i := range initStatuses {
		byName[initStatuses[i].Name] = &initStatuses[i]
	}
	for i := range statuses {
		byName[statuses[i].Name] = &statuses[i]
	}
	lastExit := func(s *v1.ContainerStatus) (int32, bool) {
		if s.State.Terminated != nil {
			return s.State.Terminated.ExitCode, true
		}
		if s.State.Waiting != nil && s.LastTerminationState.Terminated != nil {
			return s.LastTerminationState.Terminated.ExitCode, true
		}
		return 0, false
	}
	pendingInit, pendingSidecar, failedInitForGood := 0, 0, 0
	running, waiting, stopped, stoppedForGood, succeeded := 0, 0, 0, 0, 0
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s := byName[c.Name]
		if isSidecar(c) {
			switch {
			case s.State.Running != nil:
				if s.Started == nil || !*s.Started {
					pendingSidecar++
				}
				running++
			case s.State.Terminated != nil:
			case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			default:
				pendingSidecar++
				waiting++
			}
			continue
		}
		if s.State.Running != nil {
			pendingInit++
			continue
		}
		code, ended := lastExit(s)
		if !ended {
			pendingInit++
			continue
		}
		if code != 0 && !shouldRestart(c, &pod.Spec, code) {
			failedInitForGood++
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s := byName[c.Name]
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if !shouldRestart(c, &pod.Spec, s.State.Terminated.ExitCode) {
				stoppedForGood++
			}
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			stopped++
			if !shouldRestart(c, &pod.Spec, s.LastTerminationState.Terminated.ExitCode) {
				stoppedForGood++
			}
		default:
			waiting++
		}
	}
	if failedInitForGood > 0 {
		return v1.PodFailed
	}
	initialized := false
	for i := range pod.Spec.Containers {
		if cs := st.Containers[pod.Spec.Containers[i].Name]; cs != nil && cs.Current != nil {
			initialized = true
		}
	}
	switch {
	case pendingInit > 0 || (pendingSidecar > 0 && !initialized):
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		if podIsTerminal {
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
		if stopped != stoppedForGood {
			return v1.PodRunning
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	return v1.PodPending
}

func initializedCondition(pod *v1.Pod, all []v1.ContainerStatus, phase v1.PodPhase) v1.PodCondition {
	byName := map[string]v1.ContainerStatus{}
	for _, s := range all {
		byName[s.Name] = s
	}
	if phase == v1.PodSucceeded {
		return v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue, Reason: condReasonPodCompleted}
	}
	for i := range pod.Spec.Containers {
		s := byName[pod.Spec.Containers[i].Name]
		if s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil {
			return v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue}
		}
	}
	var incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s := byName[c.Name]
		done := s.Ready
		if isSidecar(c) {
			done = s.Started != nil && *s.Started
		}
		if !done {
			incomplete = append(incomplete, c.Name)
		}
	}
	if len(incomplete) > 0 {
		return v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionFalse, Reason: condReasonContainersNotInitialized,
			Message: fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))}
	}
	return v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue}
}

func containersReadyCondition(pod *v1.Pod, all []v1.ContainerStatus, phase v1.PodPhase) v1.PodCondition {
	switch phase {
	case v1.PodSucceeded:
		return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: condReasonPodCompleted}
	case v1.PodFailed:
		return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: condReasonPodFailed}
	}
	byName := map[string]v1.ContainerStatus{}
	for _, s := range all {
		byName[s.Name] = s
	}
	var unready []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) && !byName[c.Name].Ready {
			unready = append(unready, c.Name)
		}
	}
	for i := range pod.Spec.Containers {
		if !byName[pod.Spec.Containers[i].Name].Ready {
			unready = append(unready, pod.Spec.Containers[i].Name)
		}
	}
	if len(unready) > 0 {
		return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: condReasonContainersNotReady,
			Message: fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))}
	}
	return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue}
}

func readyCondition(pod *v1.Pod, containersReady v1.PodCondition, conditions []v1.PodCondition) v1.PodCondition {
	if containersReady.Status != v1.ConditionTrue {
		return v1.PodCondition{Type: v1.PodReady, Status: containersReady.Status, Reason: containersReady.Reason, Message: containersReady.Message}
	}
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		var found *v1.PodCondition
		for i := range conditions {
			if conditions[i].Type == g.ConditionType {
				found = &conditions[i]
			}
		}
		switch {
		case found == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(g.ConditionType)))
		case found.Status != v1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(g.ConditionType), found.Status))
		}
	}
	if len(msgs) > 0 {
		return v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: condReasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue}
}

// qosClass computes the pod's QoS class for the rare pod the apiserver did
// not stamp: Guaranteed when every container limits cpu and memory with
// requests equal to limits, BestEffort when nothing is requested or
// limited, Burstable otherwise.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	any := false
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			r := list[i].Resources
			for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
				req, hasReq := r.Requests[name]
				lim, hasLim := r.Limits[name]
				if hasReq && !req.IsZero() {
					any = true
					add(requests, name, req)
				}
				if hasLim && !lim.IsZero() {
					any = true
					add(limits, name, lim)
				}
				if !hasLim || (hasReq && req.Cmp(lim) != 0) {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case !any:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

func add(list v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
	cur := list[name]
	cur.Add(q)
	list[name] = cur
}

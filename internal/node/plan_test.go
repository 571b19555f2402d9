package node

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/sim"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(secs float64) time.Time { return t0.Add(time.Duration(secs * float64(time.Second))) }

type podOpt func(*v1.Pod)

func testPod(opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec: v1.PodSpec{
			NodeName:      "node-1",
			RestartPolicy: v1.RestartPolicyAlways,
			Containers:    []v1.Container{{Name: "c", Image: "nginx"}},
		},
		Status: v1.PodStatus{Phase: v1.PodPending, QOSClass: v1.PodQOSBestEffort},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withRestart(r v1.RestartPolicy) podOpt { return func(p *v1.Pod) { p.Spec.RestartPolicy = r } }

func withInit(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "busybox"})
		}
	}
}

func withSidecar(name string, startupDelay int32) podOpt {
	return func(p *v1.Pod) {
		c := v1.Container{Name: name, Image: "busybox", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways)}
		if startupDelay > 0 {
			c.StartupProbe = &v1.Probe{InitialDelaySeconds: startupDelay}
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

func withDebugger(name, target string) podOpt {
	return func(p *v1.Pod) {
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
			EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: name, Image: "busybox", Stdin: true, TTY: true},
			TargetContainerName:      target,
		})
	}
}

func deleting(grace int64) podOpt {
	return func(p *v1.Pod) {
		ts := metav1.NewTime(at(0))
		p.DeletionTimestamp = &ts
		p.DeletionGracePeriodSeconds = &grace
	}
}

// stateOf builds a pod state with the network ready and the given containers.
func stateOf(containers map[string]*containerState) *podState {
	st := newPodState()
	st.StartTime = at(0)
	st.NetworkReady, st.PodIP = true, "10.244.1.2"
	for n, cs := range containers {
		if cs.NextKind == "" {
			cs.NextKind = runtime.KindSim
		}
		st.Containers[n] = cs
	}
	return st
}

func simRunning(started float64) *attempt {
	return &attempt{ID: "sim://a1", Sim: true, Running: true, StartedAt: at(started)}
}

func exited(id string, code int32, started, finished float64) *attempt {
	return &attempt{ID: id, Sim: true, StartedAt: at(started), FinishedAt: at(finished), ExitCode: code, Reason: exitReason(code)}
}

func exitReason(code int32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

func cond(pod *v1.PodStatus, t v1.PodConditionType) v1.PodCondition {
	for _, c := range pod.Conditions {
		if c.Type == t {
			return c
		}
	}
	return v1.PodCondition{}
}

// summary is what the table compares: the decisions and the salient status.
type summary struct {
	PrepareNetwork bool
	PrepareVolumes bool
	Starts         []startAction
	Stops          []stopAction
	SimExits       []simExit
	Events         []string // reason: message
	Phase          v1.PodPhase
	Reason         string
	Ready          v1.ConditionStatus
	Initialized    v1.ConditionStatus
	States         []string // per container: "name=state/reason/exit"
	Release        bool
	Delete         bool
	Forget         bool
	RequeueAfter   time.Duration
}

func stateString(s v1.ContainerStatus) string {
	switch {
	case s.State.Running != nil:
		r := "running"
		if s.Ready {
			r += "/ready"
		}
		return s.Name + "=" + r
	case s.State.Terminated != nil:
		return s.Name + "=terminated/" + s.State.Terminated.Reason + "/" + itoa32(s.State.Terminated.ExitCode)
	case s.State.Waiting != nil:
		return s.Name + "=waiting/" + s.State.Waiting.Reason
	}
	return s.Name + "=?"
}

func itoa32(i int32) string { return strconv.Itoa(int(i)) }

func summarize(p podPlan) summary {
	s := summary{
		PrepareNetwork: p.PrepareNetwork, PrepareVolumes: p.PrepareVolumes,
		Starts: p.Starts, Stops: p.Stops, SimExits: p.SimExits,
		Release: p.Release, Delete: p.Delete, Forget: p.Forget, RequeueAfter: p.RequeueAfter,
	}
	for _, e := range p.Events {
		s.Events = append(s.Events, e.Reason+": "+e.Message)
	}
	if p.Status != nil {
		s.Phase, s.Reason = p.Status.Phase, p.Status.Reason
		s.Ready = cond(p.Status, v1.PodReady).Status
		s.Initialized = cond(p.Status, v1.PodInitialized).Status
		all := append(append([]v1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
		for _, c := range append(all, p.Status.EphemeralContainerStatuses...) {
			s.States = append(s.States, stateString(c))
		}
	}
	return s
}

func TestPlanPod(t *testing.T) {
	three := int32(3)
	cases := map[string]struct {
		pod   *v1.Pod
		gone  bool
		state *podState
		sim   sim.Behaviour
		now   time.Time
		want  summary
	}{
		"new pod waits for its network": {
			pod:   testPod(),
			state: func() *podState { st := newPodState(); st.StartTime = at(0); return st }(),
			now:   at(0),
			want: summary{PrepareNetwork: true, Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=waiting/ContainerCreating"}, RequeueAfter: time.Second},
		},
		"no podCIDR yet: NetworkNotReady event": {
			pod: testPod(),
			state: func() *podState {
				st := newPodState()
				st.StartTime, st.NetworkError = at(0), "network is not ready: node node-1 has no podCIDR yet"
				return st
			}(),
			now: at(0),
			want: summary{PrepareNetwork: true, Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				Events: []string{"NetworkNotReady: network is not ready: node node-1 has no podCIDR yet"},
				States: []string{"c=waiting/ContainerCreating"}, RequeueAfter: time.Second},
		},
		"an ephemeral container starts once the pod runs": {
			pod:   testPod(withDebugger("dbg", "c")),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}, "dbg": {}}),
			now:   at(5),
			want: summary{Starts: []startAction{{Name: "dbg", Kind: runtime.KindSim}}, Phase: v1.PodRunning, Ready: v1.ConditionTrue,
				Initialized: v1.ConditionTrue, States: []string{"c=running/ready", "dbg=waiting/ContainerCreating"}},
		},
		"an ended ephemeral container is not restarted and does not end the pod": {
			pod:   testPod(withDebugger("dbg", "c")),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}, "dbg": {Current: exited("sim://d1", 3, 1, 4)}}),
			now:   at(5),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready", "dbg=terminated/Error/3"}},
		},
		"a deleted pod stops its ephemeral containers too": {
			pod:   testPod(withDebugger("dbg", "c"), deleting(30)),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}, "dbg": {Current: &attempt{ID: "sim://d1", Sim: true, Running: true, StartedAt: at(1)}}}),
			now:   at(5),
			want: summary{Stops: []stopAction{{Name: "c", Grace: 30 * time.Second, Message: "Stopping container c"}, {Name: "dbg", Grace: 30 * time.Second, Message: "Stopping container dbg"}},
				Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready", "dbg=running"}, RequeueAfter: 30 * time.Second},
		},
		"network ready: start the container": {
			pod:   testPod(),
			state: stateOf(map[string]*containerState{"c": {}}),
			now:   at(0),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim}}, Phase: v1.PodPending, Ready: v1.ConditionFalse,
				Initialized: v1.ConditionTrue, States: []string{"c=waiting/ContainerCreating"}},
		},
		"process container needs its volumes first": {
			pod:   testPod(),
			state: stateOf(map[string]*containerState{"c": {NextKind: runtime.KindProcess}}),
			now:   at(0),
			want: summary{PrepareVolumes: true, Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=waiting/ContainerCreating"}, RequeueAfter: time.Second},
		},
		"volumes failed: wait for the retry": {
			pod: testPod(),
			state: func() *podState {
				st := stateOf(map[string]*containerState{"c": {NextKind: runtime.KindProcess}})
				st.VolumeError, st.VolumeRetryAt = "boom", at(4)
				return st
			}(),
			now: at(1),
			want: summary{Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=waiting/ContainerCreating"}, RequeueAfter: 3 * time.Second},
		},
		"image the process runtime cannot run": {
			pod:   testPod(),
			state: stateOf(map[string]*containerState{"c": {Unrunnable: "no entrypoint"}}),
			now:   at(0),
			want: summary{Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				Events: []string{"ErrImageNeverPull: no entrypoint"},
				States: []string{"c=waiting/ErrImageNeverPull"}, RequeueAfter: retryUnrunnable},
		},
		"running sim container without probes is ready": {
			pod:   testPod(),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			now:   at(0.01),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready"}},
		},
		"sim readiness waits for the probe's initial delay": {
			pod: testPod(func(p *v1.Pod) {
				p.Spec.Containers[0].ReadinessProbe = &v1.Probe{InitialDelaySeconds: 5}
			}),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			now:   at(2),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=running"}, RequeueAfter: 3 * time.Second},
		},
		"sim-ready=false makes the container unready": {
			pod:   testPod(),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			sim:   sim.Behaviour{Unready: true},
			now:   at(10),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=running"}},
		},
		"sim exit code before run-seconds: wait": {
			pod:   testPod(withRestart(v1.RestartPolicyNever)),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			sim:   sim.Behaviour{ExitCode: &three, RunFor: 10 * time.Second},
			now:   at(4),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready"}, RequeueAfter: 6 * time.Second},
		},
		"sim exit code after run-seconds: exit": {
			pod:   testPod(withRestart(v1.RestartPolicyNever)),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			sim:   sim.Behaviour{ExitCode: &three, RunFor: 10 * time.Second},
			now:   at(10),
			want: summary{SimExits: []simExit{{Name: "c", Code: 3}}, Phase: v1.PodRunning, Ready: v1.ConditionTrue,
				Initialized: v1.ConditionTrue, States: []string{"c=running/ready"}},
		},
		"Never: exit 3 fails the pod": {
			pod:   testPod(withRestart(v1.RestartPolicyNever)),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 3, 0, 1)}}),
			now:   at(1),
			want: summary{Phase: v1.PodFailed, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=terminated/Error/3"}, Release: true},
		},
		"Never: exit 0 succeeds": {
			pod:   testPod(withRestart(v1.RestartPolicyNever)),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 0, 0, 1)}}),
			now:   at(1),
			want: summary{Phase: v1.PodSucceeded, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=terminated/Completed/0"}, Release: true},
		},
		"OnFailure: first failure restarts at once": {
			pod:   testPod(withRestart(v1.RestartPolicyOnFailure)),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 1, 0, 1)}}),
			now:   at(1),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim, BackoffDelay: 10 * time.Second, BackoffUpdated: at(1)}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=terminated/Error/1"}},
		},
		"OnFailure: exit 0 is done": {
			pod:   testPod(withRestart(v1.RestartPolicyOnFailure)),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 0, 0, 1)}}),
			now:   at(1),
			want: summary{Phase: v1.PodSucceeded, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=terminated/Completed/0"}, Release: true},
		},
		"second failure within back-off: CrashLoopBackOff": {
			pod: testPod(withRestart(v1.RestartPolicyOnFailure)),
			state: stateOf(map[string]*containerState{"c": {
				RestartCount: 1, Current: exited("sim://a2", 1, 1, 2), Last: exited("sim://a1", 1, 0, 1),
				BackoffDelay: 10 * time.Second, BackoffUpdated: at(1),
			}}),
			now: at(5),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				Events: []string{"BackOff: Back-off restarting failed container c in pod p_ns(uid-1)"},
				States: []string{"c=waiting/CrashLoopBackOff"}, RequeueAfter: 7 * time.Second},
		},
		"back-off over: restart with a doubled delay": {
			pod: testPod(withRestart(v1.RestartPolicyOnFailure)),
			state: stateOf(map[string]*containerState{"c": {
				RestartCount: 1, Current: exited("sim://a2", 1, 1, 2), BackoffDelay: 10 * time.Second, BackoffUpdated: at(1),
			}}),
			now: at(12),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim, BackoffDelay: 20 * time.Second, BackoffUpdated: at(12)}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=terminated/Error/1"}},
		},
		"back-off is capped at five minutes": {
			pod: testPod(),
			state: stateOf(map[string]*containerState{"c": {
				RestartCount: 6, Current: exited("sim://a7", 1, 100, 101), BackoffDelay: 160 * time.Second, BackoffUpdated: at(100),
			}}),
			now: at(300),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim, BackoffDelay: 300 * time.Second, BackoffUpdated: at(300)}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=terminated/Error/1"}},
		},
		"back-off resets after ten quiet minutes": {
			pod: testPod(),
			state: stateOf(map[string]*containerState{"c": {
				RestartCount: 6, Current: exited("sim://a7", 1, 100, 1000), BackoffDelay: 300 * time.Second, BackoffUpdated: at(100),
			}}),
			now: at(1000),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim, BackoffDelay: 10 * time.Second, BackoffUpdated: at(1000)}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=terminated/Error/1"}},
		},
		"Always: exit 0 restarts too": {
			pod:   testPod(),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 0, 0, 1)}}),
			now:   at(1),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim, BackoffDelay: 10 * time.Second, BackoffUpdated: at(1)}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=terminated/Completed/0"}},
		},
		"init containers start one at a time": {
			pod:   testPod(withInit("i1", "i2")),
			state: stateOf(map[string]*containerState{"i1": {}, "i2": {}, "c": {}}),
			now:   at(0),
			want: summary{Starts: []startAction{{Name: "i1", Kind: runtime.KindSim}}, Phase: v1.PodPending, Ready: v1.ConditionFalse,
				Initialized: v1.ConditionFalse,
				States:      []string{"i1=waiting/PodInitializing", "i2=waiting/PodInitializing", "c=waiting/PodInitializing"}},
		},
		"a simulated init container ends with 0 at once": {
			pod:   testPod(withInit("i1", "i2")),
			state: stateOf(map[string]*containerState{"i1": {Current: simRunning(0)}, "i2": {}, "c": {}}),
			now:   at(0),
			want: summary{SimExits: []simExit{{Name: "i1", Code: 0}}, Phase: v1.PodPending, Ready: v1.ConditionFalse,
				Initialized: v1.ConditionFalse,
				States:      []string{"i1=running", "i2=waiting/PodInitializing", "c=waiting/PodInitializing"}},
		},
		"second init container after the first succeeded": {
			pod:   testPod(withInit("i1", "i2")),
			state: stateOf(map[string]*containerState{"i1": {Current: exited("sim://i1", 0, 0, 1)}, "i2": {}, "c": {}}),
			now:   at(1),
			want: summary{Starts: []startAction{{Name: "i2", Kind: runtime.KindSim}}, Phase: v1.PodPending, Ready: v1.ConditionFalse,
				Initialized: v1.ConditionFalse,
				States:      []string{"i1=terminated/Completed/0", "i2=waiting/PodInitializing", "c=waiting/PodInitializing"}},
		},
		"all init containers done: the regular ones start": {
			pod:   testPod(withInit("i1")),
			state: stateOf(map[string]*containerState{"i1": {Current: exited("sim://i1", 0, 0, 1)}, "c": {}}),
			now:   at(1),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim}}, Phase: v1.PodPending, Ready: v1.ConditionFalse,
				Initialized: v1.ConditionTrue,
				States:      []string{"i1=terminated/Completed/0", "c=waiting/PodInitializing"}},
		},
		"Never: a failed init container fails the pod": {
			pod:   testPod(withRestart(v1.RestartPolicyNever), withInit("i1")),
			state: stateOf(map[string]*containerState{"i1": {Current: exited("sim://i1", 2, 0, 1)}, "c": {}}),
			now:   at(1),
			want: summary{Phase: v1.PodFailed, Ready: v1.ConditionFalse, Initialized: v1.ConditionFalse,
				States: []string{"i1=terminated/Error/2", "c=waiting/PodInitializing"}, Release: true},
		},
		"OnFailure: a failed init container restarts": {
			pod:   testPod(withRestart(v1.RestartPolicyOnFailure), withInit("i1")),
			state: stateOf(map[string]*containerState{"i1": {Current: exited("sim://i1", 2, 0, 1)}, "c": {}}),
			now:   at(1),
			want: summary{Starts: []startAction{{Name: "i1", Kind: runtime.KindSim, BackoffDelay: 10 * time.Second, BackoffUpdated: at(1)}},
				Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionFalse,
				States: []string{"i1=terminated/Error/2", "c=waiting/PodInitializing"}},
		},
		"sidecar must start before the next init container": {
			pod:   testPod(withSidecar("side", 5), withInit("i1")),
			state: stateOf(map[string]*containerState{"side": {Current: simRunning(0)}, "i1": {}, "c": {}}),
			now:   at(1),
			want: summary{Phase: v1.PodPending, Ready: v1.ConditionFalse, Initialized: v1.ConditionFalse,
				States:       []string{"side=running", "i1=waiting/PodInitializing", "c=waiting/PodInitializing"},
				RequeueAfter: 4 * time.Second},
		},
		"sidecar started: next init container runs": {
			pod:   testPod(withSidecar("side", 5), withInit("i1")),
			state: stateOf(map[string]*containerState{"side": {Current: simRunning(0)}, "i1": {}, "c": {}}),
			now:   at(5),
			want: summary{Starts: []startAction{{Name: "i1", Kind: runtime.KindSim}}, Phase: v1.PodPending, Ready: v1.ConditionFalse,
				Initialized: v1.ConditionFalse,
				States:      []string{"side=running/ready", "i1=waiting/PodInitializing", "c=waiting/PodInitializing"}},
		},
		"regular containers done: sidecars are stopped": {
			pod: testPod(withRestart(v1.RestartPolicyNever), withSidecar("side", 0)),
			state: stateOf(map[string]*containerState{
				"side": {Current: simRunning(0)}, "c": {Current: exited("sim://c", 0, 0, 3)},
			}),
			now: at(3),
			want: summary{Stops: []stopAction{{Name: "side", Grace: 30 * time.Second, Message: "Stopping container side"}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"side=running/ready", "c=terminated/Completed/0"}, RequeueAfter: 30 * time.Second},
		},
		"deletion: SIGTERM with the deletion grace period": {
			pod:   testPod(deleting(10)),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			now:   at(1),
			want: summary{Stops: []stopAction{{Name: "c", Grace: 10 * time.Second, Message: "Stopping container c"}},
				Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready"}, RequeueAfter: 10 * time.Second},
		},
		"deletion: grace over, SIGKILL": {
			pod: testPod(deleting(10)),
			state: stateOf(map[string]*containerState{"c": {Current: func() *attempt {
				a := simRunning(0)
				a.StopSentAt, a.KillAt = at(1), at(11)
				return a
			}()}}),
			now: at(11),
			want: summary{Stops: []stopAction{{Name: "c", Force: true}},
				Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready"}, RequeueAfter: time.Second},
		},
		"deletion: everything stopped, final status then delete": {
			pod:   testPod(deleting(10)),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 143, 0, 2)}}),
			now:   at(2),
			want: summary{Phase: v1.PodFailed, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=terminated/Error/143"}, Release: true, Delete: true},
		},
		"pod gone from the API while running: stop it": {
			pod:   testPod(),
			gone:  true,
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			now:   at(1),
			want: summary{Stops: []stopAction{{Name: "c", Grace: 30 * time.Second, Message: "Stopping container c"}},
				RequeueAfter: 30 * time.Second},
		},
		"pod gone and stopped: forget it": {
			pod:   testPod(),
			gone:  true,
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 143, 0, 2)}}),
			now:   at(2),
			want:  summary{Release: true, Forget: true},
		},
		"activeDeadlineSeconds passed": {
			pod:   testPod(func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(5)) }),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			now:   at(5),
			want: summary{Stops: []stopAction{{Name: "c", Grace: 30 * time.Second, Message: "Stopping container c"}},
				Events: []string{"DeadlineExceeded: Pod was active on the node longer than the specified deadline"},
				Phase:  v1.PodFailed, Reason: "DeadlineExceeded", Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready"}, RequeueAfter: 30 * time.Second},
		},
		"activeDeadlineSeconds not yet": {
			pod:   testPod(func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(5)) }),
			state: stateOf(map[string]*containerState{"c": {Current: simRunning(0)}}),
			now:   at(2),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue,
				States: []string{"c=running/ready"}, RequeueAfter: 3 * time.Second},
		},
		"liveness failure kills the container for a restart": {
			pod: testPod(),
			state: stateOf(map[string]*containerState{"c": {Current: &attempt{
				ID: "process://x", Running: true, StartedAt: at(0), Started: true, Ready: true, LivenessFailed: true,
			}}}),
			now: at(30),
			want: summary{Stops: []stopAction{{Name: "c", Grace: 30 * time.Second, Message: "Container c failed liveness probe, will be restarted"}},
				Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue, States: []string{"c=running/ready"}},
		},
		"process readiness comes from the probe": {
			pod: testPod(),
			state: stateOf(map[string]*containerState{"c": {Current: &attempt{
				ID: "process://x", Running: true, StartedAt: at(0), Started: true, Ready: false,
			}}}),
			now:  at(3),
			want: summary{Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=running"}},
		},
		"image changed: restart the container": {
			pod: testPod(func(p *v1.Pod) { p.Spec.Containers[0].Image = "nginx:2" }),
			state: stateOf(map[string]*containerState{"c": {Current: func() *attempt {
				a := simRunning(0)
				a.SpecHash = containerHash(&v1.Container{Image: "nginx"})
				return a
			}()}}),
			now: at(3),
			want: summary{Stops: []stopAction{{Name: "c", Grace: 30 * time.Second, Restart: true, Message: "Container c definition changed, will be restarted"}},
				Phase: v1.PodRunning, Ready: v1.ConditionTrue, Initialized: v1.ConditionTrue, States: []string{"c=running/ready"}},
		},
		"a pod that is terminal in the API starts nothing": {
			pod: testPod(withRestart(v1.RestartPolicyAlways), func(p *v1.Pod) {
				p.Status.Phase = v1.PodFailed
			}),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 1, 0, 1)}}),
			now:   at(5),
			want: summary{Phase: v1.PodFailed, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=terminated/Error/1"}, Release: true},
		},
		"start error with Never fails the pod": {
			pod: testPod(withRestart(v1.RestartPolicyNever)),
			state: stateOf(map[string]*containerState{"c": {Current: &attempt{ID: "process://x", StartedAt: at(0), FinishedAt: at(0),
				ExitCode: 128, Reason: "StartError", Message: `exec: "nope": executable file not found in $PATH`}}}),
			now: at(0),
			want: summary{Phase: v1.PodFailed, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue,
				States: []string{"c=terminated/StartError/128"}, Release: true},
		},
		"per-container restartPolicy rule restarts exit code 42 only": {
			pod: testPod(withRestart(v1.RestartPolicyNever), func(p *v1.Pod) {
				p.Spec.Containers[0].RestartPolicy = ptr.To(v1.ContainerRestartPolicyNever)
				p.Spec.Containers[0].RestartPolicyRules = []v1.ContainerRestartRule{{
					Action:    v1.ContainerRestartRuleActionRestart,
					ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}},
				}}
			}),
			state: stateOf(map[string]*containerState{"c": {Current: exited("sim://a1", 42, 0, 1)}}),
			now:   at(1),
			want: summary{Starts: []startAction{{Name: "c", Kind: runtime.KindSim, BackoffDelay: 10 * time.Second, BackoffUpdated: at(1)}},
				Phase: v1.PodRunning, Ready: v1.ConditionFalse, Initialized: v1.ConditionTrue, States: []string{"c=terminated/Error/42"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := planPod(planInput{Pod: tc.pod, Gone: tc.gone, Now: tc.now, HostIP: "127.0.0.1", State: tc.state, Sim: tc.sim})
			if diff := cmp.Diff(tc.want, summarize(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanPodStatusDetails(t *testing.T) {
	pod := testPod(withRestart(v1.RestartPolicyOnFailure))
	st := stateOf(map[string]*containerState{"c": {
		RestartCount: 2,
		Current:      &attempt{ID: "sim://a3", Sim: true, Running: true, StartedAt: at(30)},
		Last:         exited("sim://a2", 1, 10, 20),
	}})
	old := &v1.PodStatus{Conditions: []v1.PodCondition{
		{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(1))},
		{Type: "example.com/gate", Status: v1.ConditionTrue},
	}}
	pod.Status.Conditions = []v1.PodCondition{{Type: "example.com/gate", Status: v1.ConditionTrue}}
	pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/gate"}}
	got := planPod(planInput{Pod: pod, Now: at(31), HostIP: "127.0.0.1", State: st, OldStatus: old}).Status
	started := true
	want := &v1.PodStatus{
		Phase:              v1.PodRunning,
		ObservedGeneration: 1,
		QOSClass:           v1.PodQOSBestEffort,
		HostIP:             "127.0.0.1",
		HostIPs:            []v1.HostIP{{IP: "127.0.0.1"}},
		PodIP:              "10.244.1.2",
		PodIPs:             []v1.PodIP{{IP: "10.244.1.2"}},
		StartTime:          ptr.To(metav1.NewTime(at(0))),
		Conditions: []v1.PodCondition{
			{Type: "example.com/gate", Status: v1.ConditionTrue},
			{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(at(31))},
			{Type: v1.PodInitialized, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(at(31))},
			{Type: v1.PodReady, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(at(1))},
			{Type: v1.ContainersReady, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(at(31))},
			{Type: v1.PodScheduled, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(at(31))},
		},
		ContainerStatuses: []v1.ContainerStatus{{
			Name:         "c",
			Image:        "nginx",
			ImageID:      "sim://nginx",
			ContainerID:  "sim://a3",
			RestartCount: 2,
			Ready:        true,
			Started:      &started,
			State:        v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(at(30))}},
			LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: metav1.NewTime(at(10)), FinishedAt: metav1.NewTime(at(20)), ContainerID: "sim://a2",
			}},
			Resources: &v1.ResourceRequirements{},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestStateFromStatus(t *testing.T) {
	pod := testPod()
	pod.Status = v1.PodStatus{
		Phase:     v1.PodRunning,
		PodIP:     "10.244.1.7",
		StartTime: ptr.To(metav1.NewTime(at(0))),
		InitContainerStatuses: []v1.ContainerStatus{{Name: "i", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", ContainerID: "process://i1"}}}},
		ContainerStatuses: []v1.ContainerStatus{
			{Name: "proc", RestartCount: 1, ContainerID: "process://p2",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(at(5))}}},
			{Name: "sim", ContainerID: "sim://s1",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(at(6))}}},
			{Name: "crash", RestartCount: 3, ContainerID: "process://c3",
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 2, ContainerID: "process://c3"}}},
		},
	}
	st := stateFromStatus(pod, at(100))
	want := map[string]*containerState{
		"i": {Current: &attempt{ID: "process://i1", Reason: "Completed"}},
		"proc": {RestartCount: 1, Current: &attempt{ID: "process://p2", StartedAt: at(5), FinishedAt: at(100), ExitCode: 137,
			Reason: "ContainerStatusUnknown", Message: "The container could not be located when quartet restarted. The container used to be Running"}},
		"sim":   {Current: &attempt{ID: "sim://s1", Sim: true, Running: true, StartedAt: at(6)}},
		"crash": {RestartCount: 3, Current: &attempt{ID: "process://c3", ExitCode: 2}},
	}
	if diff := cmp.Diff(want, st.Containers, cmp.AllowUnexported(attempt{}, containerState{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if st.PodIP != "10.244.1.7" || !st.StartTime.Equal(at(0)) || st.Terminal {
		t.Errorf("pod state = ip %q start %v terminal %v", st.PodIP, st.StartTime, st.Terminal)
	}
	// With restartPolicy Always the lost process container restarts and the
	// simulated one keeps running.
	st.NetworkReady = true
	pod.Spec.Containers = []v1.Container{{Name: "proc"}, {Name: "sim"}, {Name: "crash"}}
	pod.Spec.InitContainers = []v1.Container{{Name: "i"}}
	for _, cs := range st.Containers {
		cs.NextKind = runtime.KindSim
	}
	p := planPod(planInput{Pod: pod, Now: at(100), HostIP: "127.0.0.1", State: st})
	var starts []string
	for _, s := range p.Starts {
		starts = append(starts, s.Name)
	}
	if diff := cmp.Diff([]string{"proc", "crash"}, starts); diff != "" {
		t.Errorf("starts after restart (-want +got):\n%s", diff)
	}
}

func TestShouldRestart(t *testing.T) {
	never := ptr.To(v1.ContainerRestartPolicyNever)
	cases := map[string]struct {
		pod  v1.RestartPolicy
		c    v1.Container
		code int32
		want bool
	}{
		"Always/0":                {v1.RestartPolicyAlways, v1.Container{}, 0, true},
		"OnFailure/0":             {v1.RestartPolicyOnFailure, v1.Container{}, 0, false},
		"OnFailure/1":             {v1.RestartPolicyOnFailure, v1.Container{}, 1, true},
		"Never/1":                 {v1.RestartPolicyNever, v1.Container{}, 1, false},
		"container Never wins":    {v1.RestartPolicyAlways, v1.Container{RestartPolicy: never}, 1, false},
		"sidecar Always":          {v1.RestartPolicyNever, v1.Container{RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways)}, 0, true},
		"rule NotIn 0 restarts 3": {v1.RestartPolicyNever, v1.Container{RestartPolicy: never, RestartPolicyRules: []v1.ContainerRestartRule{{Action: v1.ContainerRestartRuleActionRestart, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpNotIn, Values: []int32{0}}}}}, 3, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := &v1.PodSpec{RestartPolicy: tc.pod}
			if got := shouldRestart(&tc.c, spec, tc.code); got != tc.want {
				t.Errorf("shouldRestart = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProbeCounter(t *testing.T) {
	cases := map[string]struct {
		probe    v1.Probe
		initial  bool
		outcomes []bool
		want     []bool // verdict after each outcome
	}{
		"readiness: one success is enough": {v1.Probe{SuccessThreshold: 1, FailureThreshold: 3}, false,
			[]bool{false, true, false, false, false}, []bool{false, true, true, true, false}},
		"liveness: three failures in a row": {v1.Probe{SuccessThreshold: 1, FailureThreshold: 3}, true,
			[]bool{false, false, true, false, false, false}, []bool{true, true, true, true, true, false}},
		"successThreshold 2": {v1.Probe{SuccessThreshold: 2, FailureThreshold: 1}, false,
			[]bool{true, false, true, true, false}, []bool{false, false, false, true, false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newProbeCounter(&tc.probe, tc.initial)
			var got []bool
			for _, ok := range tc.outcomes {
				c.observe(ok)
				got = append(got, c.verdict)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

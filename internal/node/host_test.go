package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

type testHost struct {
	t      *testing.T
	h      *Host
	client *fake.Clientset
	clock  *clocktesting.FakeClock
	events *record.FakeRecorder
	cancel context.CancelFunc
	done   chan struct{}
	// seen are the events drained so far (seenEvents).
	seen []string
}

// seenEvents drains the recorder and returns every event recorded so far.
func (th *testHost) seenEvents() []string {
	for {
		select {
		case e := <-th.events.Events:
			th.seen = append(th.seen, e)
		default:
			return th.seen
		}
	}
}

// sawEvent reports whether an event containing substr was recorded.
func (th *testHost) sawEvent(substr string) bool {
	for _, e := range th.seenEvents() {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// startHost runs a Host on a fake clientset; node-1 is pre-created with a
// podCIDR, as upstream's node-ipam controller would give it.
func startHost(t *testing.T, mode string, dataDir string, objects ...runtime.Object) *testHost {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	objects = append(objects, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-1-uid"}, Spec: v1.NodeSpec{PodCIDR: "10.244.1.0/24"}})
	client := fake.NewClientset(objects...)
	return startHostWith(t, mode, dataDir, client)
}

func startHostWith(t *testing.T, mode, dataDir string, client *fake.Clientset, setup ...func(*Host)) *testHost {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	h, err := NewHost(HostConfig{Client: client, DataDir: dataDir, Runtime: mode, Clock: clk, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events := record.NewFakeRecorder(100000)
	h.recorderFor = func(string) record.EventRecorder { return events }
	for _, f := range setup {
		f(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	th := &testHost{t: t, h: h, client: client, clock: clk, events: events, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(th.done)
		if err := h.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(th.stop)
	return th
}

func (th *testHost) stop() {
	th.cancel()
	<-th.done
}

func (th *testHost) addNode(spec NodeSpec) {
	th.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := th.h.AddNode(ctx, spec); err != nil {
		th.t.Fatalf("AddNode: %v", err)
	}
}

// eventually polls cond for up to 10 s of real time.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func (th *testHost) pod(name string) *v1.Pod {
	p, err := th.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

func (th *testHost) createPod(p *v1.Pod) *v1.Pod {
	th.t.Helper()
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if p.UID == "" {
		p.UID = types.UID("uid-" + p.Name)
	}
	created, err := th.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		th.t.Fatal(err)
	}
	return created
}

func (th *testHost) waitPod(name, what string, cond func(*v1.Pod) bool) *v1.Pod {
	th.t.Helper()
	var got *v1.Pod
	eventually(th.t, name+" "+what, func() (bool, string) {
		got = th.pod(name)
		if got == nil {
			return false, "no pod"
		}
		return cond(got), fmt.Sprintf("%+v", got.Status)
	})
	return got
}

// stepUntilIdle advances the fake clock by d in small steps, letting the
// host react in between.
func (th *testHost) step(d time.Duration) {
	const n = 20
	for i := 0; i < n; i++ {
		th.clock.Step(d / n)
		time.Sleep(2 * time.Millisecond)
	}
}

func boundPod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.PodSpec{
			NodeName:      "node-1",
			RestartPolicy: v1.RestartPolicyAlways,
			Containers:    []v1.Container{{Name: "c", Image: "nginx:1.27"}},
		},
		Status: v1.PodStatus{Phase: v1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func containerStatusOf(p *v1.Pod, name string) v1.ContainerStatus {
	for _, cs := range append(append([]v1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs
		}
	}
	return v1.ContainerStatus{}
}

func podCondition(p *v1.Pod, t v1.PodConditionType) v1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func TestNodeRegistrationAndLease(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1", Labels: map[string]string{"hardware": "gpu"}})
	th.addNode(NodeSpec{Name: "node-2", Taints: []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}})

	if got := th.h.Nodes(); strings.Join(got, ",") != "node-1,node-2" {
		t.Errorf("Nodes() = %v", got)
	}
	n1, err := th.client.CoreV1().Nodes().Get(context.Background(), "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"hardware": "gpu", "kubernetes.io/hostname": "node-1", "kubernetes.io/os": "linux"} {
		if n1.Labels[k] != v {
			t.Errorf("node-1 label %s = %q, want %q", k, n1.Labels[k], v)
		}
	}
	if n1.Spec.PodCIDR != "10.244.1.0/24" {
		t.Errorf("registration lost the podCIDR: %q", n1.Spec.PodCIDR)
	}
	ready := false
	for _, c := range n1.Status.Conditions {
		if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue && c.Reason == "KubeletReady" {
			ready = true
		}
	}
	if !ready {
		t.Errorf("node-1 not Ready: %+v", n1.Status.Conditions)
	}
	if n1.Status.Allocatable.Pods().Value() != 110 || n1.Status.Capacity.Cpu().IsZero() {
		t.Errorf("capacity/allocatable = %v / %v", n1.Status.Capacity, n1.Status.Allocatable)
	}
	if n1.Status.NodeInfo.KubeletVersion != KubeletVersion || n1.Status.Addresses[0].Address != "127.0.0.1" {
		t.Errorf("nodeInfo/addresses = %+v %+v", n1.Status.NodeInfo, n1.Status.Addresses)
	}
	n2, _ := th.client.CoreV1().Nodes().Get(context.Background(), "node-2", metav1.GetOptions{})
	if len(n2.Spec.Taints) != 1 || n2.Spec.Taints[0].Key != "node-role.kubernetes.io/control-plane" {
		t.Errorf("node-2 taints = %+v", n2.Spec.Taints)
	}

	lease := func() *coordinationv1.Lease {
		l, err := th.client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), "node-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := lease()
	if *l.Spec.HolderIdentity != "node-1" || *l.Spec.LeaseDurationSeconds != 40 || !l.Spec.RenewTime.Time.Equal(t0) {
		t.Errorf("lease = %+v", l.Spec)
	}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" {
		t.Errorf("lease owner = %+v", l.OwnerReferences)
	}
	// The lease is renewed about every 10 s.
	eventually(t, "heartbeat timers", func() (bool, string) { return th.clock.HasWaiters(), "" })
	th.step(12 * time.Second)
	eventually(t, "lease renewal", func() (bool, string) {
		l := lease()
		return l.Spec.RenewTime.After(t0), l.Spec.RenewTime.String()
	})

	// Removing a node stops its heartbeat and deletes the Node.
	if err := th.h.RemoveNode(context.Background(), "node-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := th.client.CoreV1().Nodes().Get(context.Background(), "node-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node-2 still exists: %v", err)
	}
	if err := th.h.AddNode(context.Background(), NodeSpec{Name: "node-1"}); err == nil {
		t.Errorf("adding node-1 twice succeeded")
	}
	if err := th.h.AddNode(context.Background(), NodeSpec{Name: "Bad_Name"}); err == nil {
		t.Errorf("adding an invalid node name succeeded")
	}
}

func TestSimPodRunsAndIsReady(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("web", func(p *v1.Pod) {
		p.Spec.Containers[0].ReadinessProbe = &v1.Probe{InitialDelaySeconds: 5}
	}))
	p := th.waitPod("web", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	cs := containerStatusOf(p, "c")
	if cs.State.Running == nil || cs.Ready || !strings.HasPrefix(cs.ContainerID, "sim://") || *cs.Started != true {
		t.Errorf("container status = %+v", cs)
	}
	if !strings.HasPrefix(p.Status.PodIP, "10.244.1.") || p.Status.HostIP != "127.0.0.1" || p.Status.StartTime == nil {
		t.Errorf("podIP %q hostIP %q startTime %v", p.Status.PodIP, p.Status.HostIP, p.Status.StartTime)
	}
	if podCondition(p, v1.PodReady) != v1.ConditionFalse || podCondition(p, v1.PodScheduled) != v1.ConditionTrue {
		t.Errorf("conditions = %+v", p.Status.Conditions)
	}
	th.step(6 * time.Second)
	th.waitPod("web", "Ready", func(p *v1.Pod) bool { return podCondition(p, v1.PodReady) == v1.ConditionTrue })

	// quartet.dev/sim-ready=false on the live pod makes it unready.
	p = th.pod("web")
	p.Annotations = map[string]string{"quartet.dev/sim-ready": "false"}
	if _, err := th.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	th.waitPod("web", "unready", func(p *v1.Pod) bool { return podCondition(p, v1.PodReady) == v1.ConditionFalse })
}

func TestSimExitCodes(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("fails", withRestart(v1.RestartPolicyNever), func(p *v1.Pod) {
		p.Annotations = map[string]string{"quartet.dev/sim-exit-code": "3"}
	}))
	th.createPod(boundPod("succeeds", withRestart(v1.RestartPolicyNever), func(p *v1.Pod) {
		p.Annotations = map[string]string{"quartet.dev/sim-exit-code": "0", "quartet.dev/sim-run-seconds": "30"}
	}))
	p := th.waitPod("fails", "Failed", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if term := containerStatusOf(p, "c").State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("fails: terminated = %+v", term)
	}
	th.waitPod("succeeds", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	eventually(t, "run-seconds timer", func() (bool, string) { return th.clock.HasWaiters(), "" })
	th.step(31 * time.Second)
	p = th.waitPod("succeeds", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if term := containerStatusOf(p, "c").State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("succeeds: terminated = %+v", term)
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("crash", withRestart(v1.RestartPolicyOnFailure), func(p *v1.Pod) {
		p.Annotations = map[string]string{"quartet.dev/sim-exit-code": "1"}
	}))
	// The first restart is immediate, the second waits 10 s.
	p := th.waitPod("crash", "CrashLoopBackOff", func(p *v1.Pod) bool {
		cs := containerStatusOf(p, "c")
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := containerStatusOf(p, "c")
	if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("after first crash loop: %+v", cs)
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=c pod=crash_default(uid-crash)") {
		t.Errorf("waiting message = %q", cs.State.Waiting.Message)
	}
	if p.Status.Phase != v1.PodRunning {
		t.Errorf("phase = %s, want Running", p.Status.Phase)
	}
	th.step(11 * time.Second)
	p = th.waitPod("crash", "second back-off", func(p *v1.Pod) bool {
		cs := containerStatusOf(p, "c")
		return cs.RestartCount == 2 && cs.State.Waiting != nil
	})
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.Contains(msg, "back-off 20s") {
		t.Errorf("second back-off message = %q", msg)
	}
	if !hasEvent(th.events, "BackOff") {
		t.Errorf("no BackOff event")
	}
}

func hasEvent(r *record.FakeRecorder, substr string) bool {
	for {
		select {
		case e := <-r.Events:
			if strings.Contains(e, substr) {
				return true
			}
		default:
			return false
		}
	}
}

func TestGracefulDeletion(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("gone"))
	p := th.waitPod("gone", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })

	var mu sync.Mutex
	var deletes []k8stesting.DeleteActionImpl
	th.client.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		deletes = append(deletes, a.(k8stesting.DeleteActionImpl))
		mu.Unlock()
		return false, nil, nil
	})
	// What the apiserver does on `kubectl delete pod`: set the deletion timestamp.
	now := metav1.NewTime(th.clock.Now())
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, ptr.To(int64(30))
	if _, err := th.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "final delete", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(deletes) > 0, ""
	})
	mu.Lock()
	d := deletes[0]
	mu.Unlock()
	if d.DeleteOptions.GracePeriodSeconds == nil || *d.DeleteOptions.GracePeriodSeconds != 0 ||
		d.DeleteOptions.Preconditions == nil || *d.DeleteOptions.Preconditions.UID != "uid-gone" {
		t.Errorf("final delete options = %+v", d.DeleteOptions)
	}
	if !hasEvent(th.events, "Killing") {
		t.Errorf("no Killing event")
	}
	eventually(t, "record forgotten", func() (bool, string) { return th.h.record("uid-gone") == nil, "" })
}

func TestActiveDeadline(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("deadline", withRestart(v1.RestartPolicyNever), func(p *v1.Pod) {
		p.Spec.ActiveDeadlineSeconds = ptr.To(int64(5))
	}))
	th.waitPod("deadline", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	eventually(t, "deadline timer", func() (bool, string) { return th.clock.HasWaiters(), "" })
	th.step(6 * time.Second)
	p := th.waitPod("deadline", "Failed", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodFailed && containerStatusOf(p, "c").State.Terminated != nil
	})
	if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != deadlineMessage {
		t.Errorf("reason/message = %q / %q", p.Status.Reason, p.Status.Message)
	}
}

func TestMalformedPodTouchesNoOther(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("bad", func(p *v1.Pod) {
		p.Annotations = map[string]string{"quartet.dev/sim-exit-code": "lots"}
		p.Spec.Volumes = []v1.Volume{{Name: "v"}} // no source at all
	}))
	th.createPod(boundPod("good"))
	th.waitPod("good", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	th.waitPod("bad", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	if !hasEvent(th.events, "InvalidSimAnnotation") {
		t.Errorf("no event for the bad annotation")
	}
}

func TestRemoveNodeStopsItsPods(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("a"))
	th.waitPod("a", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	if err := th.h.RemoveNode(context.Background(), "node-1"); err != nil {
		t.Fatal(err)
	}
	if th.h.record("uid-a") != nil {
		t.Errorf("pod record survived RemoveNode")
	}
	if err := th.h.RemoveNode(context.Background(), "node-1"); err == nil {
		t.Errorf("removing an unknown node succeeded")
	}
}

func TestSimLogs(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("logs"))
	th.waitPod("logs", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	a := th.h.agents["node-1"]
	body, code := getLogs(a, "/containerLogs/default/logs/c")
	if code != http.StatusOK || !strings.Contains(body, "is simulated; no process runs") {
		t.Errorf("logs = %d %q", code, body)
	}
	if body, code := getLogs(a, "/containerLogs/default/logs/c?previous=true"); code != http.StatusBadRequest ||
		!strings.Contains(body, `previous terminated container "c" in pod "logs" not found`) {
		t.Errorf("previous logs = %d %q", code, body)
	}
	if _, code := getLogs(a, "/containerLogs/default/nope/c"); code != http.StatusNotFound {
		t.Errorf("logs of a missing pod: %d", code)
	}
}

func getLogs(a *agent, path string) (string, int) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := httptest.NewRecorder()
	a.kubeletAPI().ServeHTTP(w, req)
	return w.Body.String(), w.Code
}

func TestPreStopSleepDelaysTermination(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("hook", func(p *v1.Pod) {
		p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 5}}}
	}))
	p := th.waitPod("hook", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	now := metav1.NewTime(th.clock.Now())
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, ptr.To(int64(30))
	if _, err := th.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Killing event", func() (bool, string) { return hasEvent(th.events, "Killing"), "" })
	time.Sleep(50 * time.Millisecond)
	if th.pod("hook") == nil {
		t.Fatalf("pod deleted before its preStop hook finished")
	}
	th.step(6 * time.Second)
	eventually(t, "pod deleted", func() (bool, string) { return th.pod("hook") == nil, "" })
}

func TestNodeStatusRepairedAfterLifecycleController(t *testing.T) {
	th := startHost(t, RuntimeSim, "")
	th.addNode(NodeSpec{Name: "node-1"})
	// What the node-lifecycle controller does when heartbeats are late.
	n, err := th.client.CoreV1().Nodes().Get(context.Background(), "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == v1.NodeReady {
			n.Status.Conditions[i].Status = v1.ConditionUnknown
			n.Status.Conditions[i].Reason = "NodeStatusUnknown"
		}
	}
	if _, err := th.client.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node informer", func() (bool, string) {
		obj, _, _ := th.h.nodeLister.GetByKey("node-1")
		node, _ := obj.(*v1.Node)
		// The informer may still hold the Node as registered, without conditions.
		return node != nil && len(node.Status.Conditions) > 0 && node.Status.Conditions[len(node.Status.Conditions)-1].Status == v1.ConditionUnknown, ""
	})
	eventually(t, "heartbeat timers", func() (bool, string) { return th.clock.HasWaiters(), "" })
	th.step(12 * time.Second)
	eventually(t, "Ready again", func() (bool, string) {
		n, _ := th.client.CoreV1().Nodes().Get(context.Background(), "node-1", metav1.GetOptions{})
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady {
				return c.Status == v1.ConditionTrue, string(c.Status)
			}
		}
		return false, "no Ready condition"
	})
}

func TestStatusWrittenOnlyWhenChanged(t *testing.T) {
	w := &recordingPodWriter{}
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "n1"}, Spec: v1.NodeSpec{PodCIDR: "10.244.1.0/24"}})
	th := startHostWith(t, RuntimeSim, t.TempDir(), client, func(h *Host) { h.writer = w })
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("quiet"))
	eventually(t, "first status write", func() (bool, string) { return len(w.patchesOf("quiet")) > 0, "" })
	first := w.patchesOf("quiet")
	if len(first) != 1 || !strings.Contains(first[0], `"phase":"Running"`) || !strings.Contains(first[0], `"uid":"uid-quiet"`) {
		t.Fatalf("first writes = %q, want one patch to Running with the UID precondition", first)
	}
	// More syncs with nothing new write nothing.
	for i := 0; i < 5; i++ {
		th.h.wake("uid-quiet")
		time.Sleep(10 * time.Millisecond)
	}
	if got := w.patchesOf("quiet"); len(got) != 1 {
		t.Errorf("%d writes after idle syncs, want 1: %q", len(got), got)
	}
}

package daemonset

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

// planResult is the comparable view of a decision.
type planResult struct {
	CreateOn     []string
	Remove       []string
	Reasons      []string
	BackoffSteps int
	Rollout      bool
	Held         int
	Status       statusView
	Requeue      time.Duration
}

type statusView struct {
	Desired, Current, Misscheduled, Ready, Updated, Available, Unavailable int32
}

func viewOf(p *decision) planResult {
	r := planResult{
		CreateOn: p.createOn, Remove: podNames(p.remove), BackoffSteps: len(p.backoffSteps), Rollout: p.rollout,
		Held: p.heldByCanary, Requeue: p.requeueAfter,
		Status: statusView{p.status.desired, p.status.current, p.status.misscheduled, p.status.ready, p.status.updated, p.status.available, p.status.unavailable},
	}
	for _, e := range p.events {
		r.Reasons = append(r.Reasons, e.Reason)
	}
	return r
}

// st builds a status view: desired, current, ready, updated, available;
// misscheduled and unavailable follow.
func st(desired, current, ready, updated, available int32) statusView {
	return statusView{Desired: desired, Current: current, Ready: ready, Updated: updated, Available: available, Unavailable: desired - available}
}

func TestPlan(t *testing.T) {
	pct := intstr.FromString
	num := intstr.FromInt32
	three := testNodes(3)
	canaryNodes := []*corev1.Node{testNode("node-1"), testNode("node-2"), testNode("node-3", label("canary", "true"))}
	oldReady := func(node string, opts ...podOpt) *corev1.Pod {
		return testPod("old-"+node, node, "old", append([]podOpt{ready()}, opts...)...)
	}
	newReady := func(node string, opts ...podOpt) *corev1.Pod {
		return testPod("new-"+node, node, "new", append([]podOpt{ready()}, opts...)...)
	}
	newPending := func(node string, opts ...podOpt) *corev1.Pod {
		return testPod("new-"+node, node, "new", opts...)
	}
	manyNodes := testNodes(300)

	cases := map[string]struct {
		set     []setOpt
		nodes   []*corev1.Node
		pods    []*corev1.Pod
		waiting bool // expectations not satisfied
		backoff func(b *flowcontrol.Backoff, clk *clocktesting.FakeClock, key string)
		canary  string
		want    planResult
	}{
		// Placement.
		"a pod on every node": {
			nodes: three,
			want:  planResult{CreateOn: []string{"node-1", "node-2", "node-3"}, Status: st(3, 0, 0, 0, 0)},
		},
		"a node joins: DESIRED follows and only it gets a pod": {
			nodes: testNodes(4),
			pods:  []*corev1.Pod{newReady("node-1"), newReady("node-2"), newReady("node-3")},
			want:  planResult{CreateOn: []string{"node-4"}, Status: st(4, 3, 3, 3, 3)},
		},
		"all placed and ready: the rolling update runs and finds nothing": {
			nodes: three,
			pods:  []*corev1.Pod{newReady("node-1"), newReady("node-2"), newReady("node-3")},
			want:  planResult{Rollout: true, Status: st(3, 3, 3, 3, 3)},
		},
		"nodeSelector: only the labelled nodes": {
			set:   []setOpt{withNodeSelector("hardware", "gpu")},
			nodes: []*corev1.Node{testNode("node-1"), testNode("node-2", label("hardware", "gpu")), testNode("node-3")},
			want:  planResult{CreateOn: []string{"node-2"}, Status: st(1, 0, 0, 0, 0)},
		},
		"label removed: the pod goes": {
			set:   []setOpt{withNodeSelector("hardware", "gpu")},
			nodes: []*corev1.Node{testNode("node-1"), testNode("node-2", label("hardware", "gpu"))},
			pods:  []*corev1.Pod{newReady("node-1"), newReady("node-2")},
			want:  planResult{Remove: []string{"new-node-1"}, Status: statusView{Desired: 1, Current: 1, Ready: 1, Updated: 1, Available: 1, Misscheduled: 1}},
		},
		"NoSchedule taint added later: the running pod stays, misscheduled": {
			nodes: []*corev1.Node{testNode("node-1", taint("dedicated", corev1.TaintEffectNoSchedule)), testNode("node-2")},
			pods:  []*corev1.Pod{newReady("node-1"), newReady("node-2")},
			want:  planResult{Rollout: true, Status: statusView{Desired: 1, Current: 1, Ready: 1, Updated: 1, Available: 1, Misscheduled: 1}},
		},
		"NoSchedule taint: no new pod": {
			nodes: []*corev1.Node{testNode("node-1", taint("dedicated", corev1.TaintEffectNoSchedule))},
			want:  planResult{Rollout: true},
		},
		"NoExecute taint: the pod is removed": {
			nodes: []*corev1.Node{testNode("node-1", taint("dedicated", corev1.TaintEffectNoExecute))},
			pods:  []*corev1.Pod{newReady("node-1")},
			want:  planResult{Remove: []string{"new-node-1"}, Status: statusView{Misscheduled: 1}},
		},
		"cordoned node: pods stay and new ones come": {
			nodes: []*corev1.Node{
				testNode("node-1", taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)),
				testNode("node-2", taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)),
			},
			pods: []*corev1.Pod{newReady("node-1")},
			want: planResult{CreateOn: []string{"node-2"}, Status: st(2, 1, 1, 1, 1)},
		},
		"failed pod: deleted, FailedDaemonPod, back-off starts": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newReady("node-1", phase(corev1.PodFailed))},
			want:  planResult{Remove: []string{"new-node-1"}, Reasons: []string{reasonFailedDaemonPod}, BackoffSteps: 1, Status: st(1, 1, 1, 1, 1)},
		},
		"failed pod within its node's back-off waits": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newPending("node-1", phase(corev1.PodFailed))},
			backoff: func(b *flowcontrol.Backoff, clk *clocktesting.FakeClock, key string) {
				b.Next(key, t0)
				b.Next(key, t0) // 2s from t0
			},
			want: planResult{Rollout: true, Requeue: 2 * time.Second, Status: st(1, 1, 0, 1, 0)},
		},
		"failed pod after the back-off: deleted": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newPending("node-1", phase(corev1.PodFailed))},
			backoff: func(b *flowcontrol.Backoff, clk *clocktesting.FakeClock, key string) {
				clk.SetTime(t0.Add(-3 * time.Second))
				b.Next(key, clk.Now()) // 1s from t0-3s
				clk.SetTime(t0)
			},
			want: planResult{Remove: []string{"new-node-1"}, Reasons: []string{reasonFailedDaemonPod}, BackoffSteps: 1, Status: st(1, 1, 0, 1, 0)},
		},
		"two failed pods on a node: one per back-off period": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newPending("node-1", phase(corev1.PodFailed)), testPod("new-b", "node-1", "new", phase(corev1.PodFailed))},
			// Same age: the name orders them.
			want: planResult{Remove: []string{"new-b"}, Reasons: []string{reasonFailedDaemonPod}, BackoffSteps: 1, Requeue: time.Second, Status: st(1, 1, 0, 1, 0)},
		},
		"succeeded pod: deleted with SucceededDaemonPod": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newPending("node-1", phase(corev1.PodSucceeded))},
			want:  planResult{Remove: []string{"new-node-1"}, Reasons: []string{reasonSucceededDaemonPod}, Status: st(1, 1, 0, 1, 0)},
		},
		"two pods on a node: the oldest stays": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newReady("node-1"), testPod("older", "node-1", "new", createdAt(t0.Add(-time.Minute)))},
			want:  planResult{Remove: []string{"new-node-1"}, Status: st(1, 1, 0, 1, 0)},
		},
		"two pods on a node: the bound one stays": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newReady("node-1"), testPod("older", "node-1", "new", createdAt(t0.Add(-time.Minute)), unbound())},
			want:  planResult{Remove: []string{"older"}, Status: st(1, 1, 1, 1, 1)},
		},
		"node gone: the unbound pod is deleted, the bound one left to pod GC": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newReady("node-1"), newPending("node-9", unbound()), newReady("node-8")},
			want:  planResult{Remove: []string{"new-node-9"}, Status: st(1, 1, 1, 1, 1)},
		},
		"a pod being deleted is replaced only once gone": {
			nodes: three[:1],
			pods:  []*corev1.Pod{newReady("node-1", deleting())},
			want:  planResult{Rollout: true, Status: st(1, 1, 1, 1, 1)},
		},
		"with surge a pod being deleted is replaced at once": {
			set:   []setOpt{withSurge(num(1), num(0))},
			nodes: three[:1],
			pods:  []*corev1.Pod{newReady("node-1", deleting())},
			want:  planResult{CreateOn: []string{"node-1"}, Status: st(1, 1, 1, 1, 1)},
		},
		"burst: at most 250 creates per sync": {
			nodes: manyNodes,
			want: planResult{CreateOn: func() []string {
				var out []string
				for _, n := range manyNodes {
					out = append(out, n.Name)
				}
				slices.Sort(out)
				return out[:250]
			}(), Status: st(300, 0, 0, 0, 0)},
		},
		"writes outstanding: status only": {
			nodes:   three,
			pods:    []*corev1.Pod{newReady("node-1")},
			waiting: true,
			want:    planResult{Status: st(3, 1, 1, 1, 1)},
		},

		// RollingUpdate without surge.
		"rolling update: one old pod at a time": {
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Remove: []string{"old-node-1"}, Status: st(3, 3, 3, 0, 3)},
		},
		"rolling update: an unavailable new pod uses the budget": {
			nodes: three,
			pods:  []*corev1.Pod{newPending("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Status: st(3, 3, 2, 1, 2)},
		},
		"rolling update: maxUnavailable 2": {
			set:   []setOpt{withSurge(num(0), num(2))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Remove: []string{"old-node-1", "old-node-2"}, Status: st(3, 3, 3, 0, 3)},
		},
		"rolling update: maxUnavailable 50% of 3 rounds up to 2": {
			set:   []setOpt{withSurge(num(0), pct("50%"))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Remove: []string{"old-node-1", "old-node-2"}, Status: st(3, 3, 3, 0, 3)},
		},
		"rolling update: unavailable old pods are replaced beyond the budget": {
			nodes: three,
			pods:  []*corev1.Pod{newPending("node-1"), testPod("old-node-2", "node-2", "old"), testPod("old-node-3", "node-3", "old")},
			want:  planResult{Rollout: true, Remove: []string{"old-node-2", "old-node-3"}, Status: st(3, 3, 0, 1, 0)},
		},
		"rolling update: a node whose pod is going counts as unavailable": {
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1", deleting()), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Status: st(3, 3, 3, 0, 3)},
		},
		"rolling update: both 0 falls back to maxUnavailable 1": {
			set:   []setOpt{withSurge(num(0), num(0))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Remove: []string{"old-node-1"}, Status: st(3, 3, 3, 0, 3)},
		},
		"rolling update: minReadySeconds holds the next step": {
			set:   []setOpt{withMinReady(10)},
			nodes: three,
			pods:  []*corev1.Pod{newReady("node-1", readySince(t0.Add(-4*time.Second))), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Requeue: 6 * time.Second, Status: statusView{Desired: 3, Current: 3, Ready: 3, Updated: 1, Available: 2, Unavailable: 1}},
		},
		"rolling update: pod-template-generation counts as updated": {
			nodes: three[:1],
			pods:  []*corev1.Pod{oldReady("node-1", podLabel("pod-template-generation", "1"))},
			want:  planResult{Rollout: true, Status: st(1, 1, 1, 1, 1)},
		},
		"OnDelete: old pods stay": {
			set:   []setOpt{withOnDelete()},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Status: st(3, 3, 3, 0, 3)},
		},
		"OnDelete: a deleted pod comes back at the new revision": {
			set:   []setOpt{withOnDelete()},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2")},
			want:  planResult{CreateOn: []string{"node-3"}, Status: st(3, 2, 2, 0, 2)},
		},

		// RollingUpdate with surge.
		"surge: a new pod next to the old one first": {
			set:   []setOpt{withSurge(num(1), num(0))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, CreateOn: []string{"node-1"}, Status: st(3, 3, 3, 0, 3)},
		},
		"surge: waiting for the new pod": {
			set:   []setOpt{withSurge(num(1), num(0))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), newPending("node-1", createdAt(t0.Add(time.Second))), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, Status: st(3, 3, 3, 0, 3)},
		},
		"surge: the new pod is available, the old one goes": {
			set:   []setOpt{withSurge(num(1), num(0))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), newReady("node-1", createdAt(t0.Add(time.Second))), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Remove: []string{"old-node-1"}, Status: st(3, 3, 3, 0, 3)},
		},
		"surge: new pod ready, minReadySeconds pending": {
			set:   []setOpt{withSurge(num(1), num(0)), withMinReady(30)},
			nodes: three[:1],
			pods:  []*corev1.Pod{oldReady("node-1"), newReady("node-1", createdAt(t0.Add(time.Second)), readySince(t0.Add(-10*time.Second)))},
			want:  planResult{Rollout: true, Requeue: 20 * time.Second, Status: st(1, 1, 1, 0, 1)},
		},
		"surge: an old pod that is not ready goes as soon as a new one exists": {
			set:   []setOpt{withSurge(num(1), num(0))},
			nodes: three[:1],
			pods:  []*corev1.Pod{testPod("old-node-1", "node-1", "old"), newPending("node-1", createdAt(t0.Add(time.Second)))},
			want:  planResult{Remove: []string{"old-node-1"}, Status: st(1, 1, 0, 0, 0)},
		},
		"surge: an unavailable old pod gets its new pod beyond maxSurge": {
			set:   []setOpt{withSurge(num(1), num(0))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), newPending("node-1", createdAt(t0.Add(time.Second))), testPod("old-node-2", "node-2", "old"), oldReady("node-3")},
			want:  planResult{Rollout: true, CreateOn: []string{"node-2"}, Status: st(3, 3, 2, 0, 2)},
		},
		"surge: 10% of 3 rounds up to 1": {
			set:   []setOpt{withSurge(pct("10%"), num(0))},
			nodes: three,
			pods:  []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			want:  planResult{Rollout: true, CreateOn: []string{"node-1"}, Status: st(3, 3, 3, 0, 3)},
		},
		"surge: an available old pod on a node the set left waits for availability elsewhere": {
			set: []setOpt{withSurge(num(1), num(0))},
			nodes: []*corev1.Node{
				testNode("node-1", taint("dedicated", corev1.TaintEffectNoSchedule)), testNode("node-2"),
			},
			pods: []*corev1.Pod{oldReady("node-1"), newPending("node-2")},
			want: planResult{Rollout: true, Status: statusView{Desired: 1, Current: 1, Updated: 1, Unavailable: 1, Misscheduled: 1}},
		},
		"surge: an available old pod on a node the set left goes once enough are available": {
			set: []setOpt{withSurge(num(1), num(0))},
			nodes: []*corev1.Node{
				testNode("node-1", taint("dedicated", corev1.TaintEffectNoSchedule)), testNode("node-2"),
			},
			pods: []*corev1.Pod{oldReady("node-1"), newReady("node-2")},
			want: planResult{Rollout: true, Remove: []string{"old-node-1"}, Status: statusView{Desired: 1, Current: 1, Ready: 1, Updated: 1, Available: 1, Misscheduled: 1}},
		},
		"surge: an old pod on a node the set left goes when not available": {
			set: []setOpt{withSurge(num(1), num(0))},
			nodes: []*corev1.Node{
				testNode("node-1", taint("dedicated", corev1.TaintEffectNoSchedule)), testNode("node-2"),
			},
			pods: []*corev1.Pod{testPod("old-node-1", "node-1", "old"), newReady("node-2")},
			want: planResult{Rollout: true, Remove: []string{"old-node-1"}, Status: statusView{Desired: 1, Current: 1, Ready: 1, Updated: 1, Available: 1, Misscheduled: 1}},
		},

		// Canary by node.
		"canary: only matching nodes are replaced": {
			set:    []setOpt{withSurge(num(0), num(3))},
			nodes:  canaryNodes,
			pods:   []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			canary: "canary=true",
			want:   planResult{Rollout: true, Remove: []string{"old-node-3"}, Held: 2, Status: st(3, 3, 3, 0, 3)},
		},
		"canary: updated canary nodes, the rest waits": {
			set:    []setOpt{withSurge(num(0), num(3))},
			nodes:  canaryNodes,
			pods:   []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), newReady("node-3")},
			canary: "canary=true",
			want:   planResult{Rollout: true, Held: 2, Status: st(3, 3, 3, 1, 3)},
		},
		"canary: unavailable old pods outside the canary wait too": {
			nodes:  canaryNodes,
			pods:   []*corev1.Pod{testPod("old-node-1", "node-1", "old"), oldReady("node-2"), oldReady("node-3")},
			canary: "canary=true",
			want:   planResult{Rollout: true, Held: 2, Status: st(3, 3, 2, 0, 2)},
		},
		"canary: no node matches, nothing moves": {
			nodes:  three,
			pods:   []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			canary: "canary=true",
			want:   planResult{Rollout: true, Held: 3, Status: st(3, 3, 3, 0, 3)},
		},
		"canary with surge: the new pod goes to the canary node": {
			set:    []setOpt{withSurge(num(1), num(0))},
			nodes:  canaryNodes,
			pods:   []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			canary: "canary=true",
			want:   planResult{Rollout: true, CreateOn: []string{"node-3"}, Held: 2, Status: st(3, 3, 3, 0, 3)},
		},
		"canary: placement still creates missing pods everywhere": {
			nodes:  canaryNodes,
			pods:   []*corev1.Pod{oldReady("node-1"), oldReady("node-3")},
			canary: "canary=true",
			want:   planResult{CreateOn: []string{"node-2"}, Status: st(3, 2, 2, 0, 2)},
		},
		"canary: OnDelete is not affected": {
			set:    []setOpt{withOnDelete()},
			nodes:  canaryNodes,
			pods:   []*corev1.Pod{oldReady("node-1"), oldReady("node-2"), oldReady("node-3")},
			canary: "canary=true",
			want:   planResult{Status: st(3, 3, 3, 0, 3)},
		},

		// Status.
		"status reports a node by its oldest pod": {
			nodes: three[:1],
			pods:  []*corev1.Pod{oldReady("node-1", createdAt(t0.Add(-time.Minute))), newPending("node-1")},
			want:  planResult{Remove: []string{"new-node-1"}, Status: st(1, 1, 1, 0, 1)},
		},
		"status: minReadySeconds counts ready pods available later": {
			set:     []setOpt{withMinReady(60)},
			nodes:   three[:2],
			pods:    []*corev1.Pod{newReady("node-1", readySince(t0.Add(-59*time.Second))), newReady("node-2", readySince(t0.Add(-61*time.Second)))},
			waiting: true,
			want:    planResult{Requeue: time.Second, Status: statusView{Desired: 2, Current: 2, Ready: 2, Updated: 2, Available: 1, Unavailable: 1}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			logger, _ := ktesting.NewTestContext(t)
			set := testSet(tc.set...)
			clk := clocktesting.NewFakeClock(t0)
			backoff := flowcontrol.NewFakeBackOff(failedPodBackoffInitial, failedPodBackoffMax, clk)
			if tc.backoff != nil {
				tc.backoff(backoff, clk, backoffKey(set, "node-1"))
			}
			var canary labels.Selector
			if tc.canary != "" {
				var err error
				if canary, err = labels.Parse(tc.canary); err != nil {
					t.Fatal(err)
				}
			}
			p, err := decide(&observed{
				logger: logger, set: set, nodes: tc.nodes, podsByNode: byNode(tc.pods...),
				hash: "new", now: t0, act: !tc.waiting, backoff: backoff, canary: canary,
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, viewOf(p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanInvalidBudget(t *testing.T) {
	logger, _ := ktesting.NewTestContext(t)
	bad := intstr.FromString("lots")
	set := testSet(withSurge(intstr.FromInt32(0), bad))
	p, err := decide(&observed{
		logger: logger, set: set, nodes: testNodes(2),
		podsByNode: byNode(testPod("a", "node-1", "old", ready()), testPod("b", "node-2", "old", ready())),
		hash:       "new", now: t0, act: true, backoff: flowcontrol.NewFakeBackOff(time.Second, time.Minute, clocktesting.NewFakeClock(t0)),
	})
	if err == nil {
		t.Fatal("an unparseable maxUnavailable gave no error")
	}
	if p == nil || p.status.desired != 2 || len(p.remove) != 0 || len(p.createOn) != 0 {
		t.Errorf("on error the plan must keep the status and write nothing, got %+v", p)
	}
}

// TestRollingUpdateConverges drives the plan through a whole rolling update,
// playing the apiserver, scheduler and kubelet between syncs, and checks the
// budget is never exceeded.
func TestRollingUpdateConverges(t *testing.T) {
	num := intstr.FromInt32
	for name, tc := range map[string]struct {
		set            []setOpt
		maxUnavailable int
		maxPerNode     int
	}{
		"maxUnavailable 2":         {set: []setOpt{withSurge(num(0), num(2))}, maxUnavailable: 2, maxPerNode: 1},
		"maxSurge 2":               {set: []setOpt{withSurge(num(2), num(0))}, maxUnavailable: 0, maxPerNode: 2},
		"maxSurge 1, minReady 5":   {set: []setOpt{withSurge(num(1), num(0)), withMinReady(5)}, maxUnavailable: 0, maxPerNode: 2},
		"maxUnavailable 1, minRdy": {set: []setOpt{withMinReady(5)}, maxUnavailable: 1, maxPerNode: 1},
	} {
		t.Run(name, func(t *testing.T) {
			logger, _ := ktesting.NewTestContext(t)
			set := testSet(tc.set...)
			nodes := testNodes(7)
			now := t0
			var pods []*corev1.Pod
			for _, n := range nodes {
				pods = append(pods, testPod("old-"+n.Name, n.Name, "old", ready(), createdAt(t0.Add(-time.Hour))))
			}
			clk := clocktesting.NewFakeClock(t0)
			serial := 0
			for step := 0; step < 200; step++ {
				p, err := decide(&observed{
					logger: logger, set: set, nodes: nodes, podsByNode: byNode(pods...), hash: "new", now: now, act: true,
					backoff: flowcontrol.NewFakeBackOff(time.Second, time.Minute, clk),
				})
				if err != nil {
					t.Fatal(err)
				}
				if int(p.status.unavailable) > tc.maxUnavailable {
					t.Fatalf("step %d: %d unavailable, budget %d", step, p.status.unavailable, tc.maxUnavailable)
				}
				if p.status.updated == 7 && p.status.available == 7 && len(p.createOn) == 0 && len(p.remove) == 0 {
					return
				}
				// Apply: deletes vanish, creates become pods that are Ready
				// one second later.
				removed := map[string]bool{}
				for _, r := range p.remove {
					removed[r.Name] = true
				}
				var next []*corev1.Pod
				for _, pod := range pods {
					if !removed[pod.Name] {
						next = append(next, pod)
					}
				}
				for _, n := range p.createOn {
					serial++
					next = append(next, testPod(fmt.Sprintf("new-%d", serial), n, "new", createdAt(now), readySince(now.Add(time.Second))))
				}
				pods = next
				perNode := map[string]int{}
				for _, pod := range pods {
					perNode[pod.Spec.NodeName]++
				}
				for n, c := range perNode {
					if c > tc.maxPerNode {
						t.Fatalf("step %d: %d pods on %s", step, c, n)
					}
				}
				now = now.Add(2 * time.Second)
			}
			t.Fatal("the rolling update did not finish in 200 syncs")
		})
	}
}

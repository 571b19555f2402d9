package daemonset

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

// BenchmarkPlan500Nodes is one sync's decision for a set on 500 nodes, all
// with a Ready pod of an older revision (the heaviest steady case: status
// plus a rolling update step).
func BenchmarkPlan500Nodes(b *testing.B) {
	set := testSet(withHostNetwork(), withNodeSelector("pool", "all"))
	nodes := testNodes(500, label("pool", "all"), taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule))
	var pods []*corev1.Pod
	for _, n := range nodes {
		pods = append(pods, testPod("p-"+n.Name, n.Name, "old", ready()))
	}
	backoff := flowcontrol.NewFakeBackOff(time.Second, time.Minute, clocktesting.NewFakeClock(t0))
	b.ReportAllocs()
	for b.Loop() {
		p, err := decide(&observed{
			logger: klog.Background(), set: set, nodes: nodes, podsByNode: byNode(pods...),
			hash: "new", now: t0, act: true, backoff: backoff,
		})
		if err != nil || len(p.remove) != 1 || p.status.desired != 500 {
			b.Fatalf("plan: %v %d %+v", err, len(p.remove), p.status)
		}
	}
}

// BenchmarkSync500Nodes is a whole sync, caches included, of a set at rest
// on 500 nodes (what every pod event during a 500-node roll-out costs).
func BenchmarkSync500Nodes(b *testing.B) {
	set := testSet()
	set.ResourceVersion = "1"
	hash := templateHash(&set.Spec.Template, nil)
	objs := []runtime.Object{set}
	for i := 1; i <= 500; i++ {
		n := fmt.Sprintf("node-%d", i)
		objs = append(objs, testNode(n), testPod("p-"+n, n, hash, ready()))
	}
	f := newFixture(b, objs...)
	f.c.apply.pods = &recordingPodControl{}
	if _, err := f.c.sync(f.ctx, "default/agent"); err != nil {
		b.Fatal(err)
	}
	f.observe()
	stored, err := f.client.Tracker().Get(dsResource, "default", "agent")
	if err != nil {
		b.Fatal(err)
	}
	f.see(stored)
	if d, err := f.c.sync(f.ctx, "default/agent"); err != nil || d == kit.OwnWritesTimeout || len(kittest.Calls(f.client, "daemonsets")) != 1 {
		b.Fatalf("a set at rest: requeue %v, %v, calls %v", d, err, kittest.Calls(f.client, "daemonsets"))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.c.sync(f.ctx, "default/agent"); err != nil {
			b.Fatal(err)
		}
	}
}

package daemonset

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2/ktesting"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

// TestRunFollowsNodes runs the whole controller (informers, queue, workers,
// events) against a fake clientset: the set gets a pod per node, and one more
// when a node joins.
func TestRunFollowsNodes(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := kittest.NewAPI()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(kit.Config{Client: client, Informers: factory})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		c.Run(ctx, 2)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
		factory.Shutdown()
	}()

	for _, n := range testNodes(3) {
		if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	set := testSet(withHostNetwork())
	if _, err := client.AppsV1().DaemonSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForPods := func(want int) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return len(pods.Items) == want, nil
		})
		if err != nil {
			pods, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			t.Fatalf("waiting for %d pods: %v (have %d)", want, err, len(pods.Items))
		}
	}
	waitForPods(3)
	if _, err := client.CoreV1().Nodes().Create(ctx, testNode("node-4"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForPods(4)

	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && s.Status.DesiredNumberScheduled == 4 && s.Status.CurrentNumberScheduled == 4 && s.Status.ObservedGeneration == 1, err
	})
	if err != nil {
		s, _ := client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		t.Fatalf("status: %v: %+v", err, s.Status)
	}
	pods, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	seen := map[string]bool{}
	for _, p := range pods.Items {
		n, err := targetNodeName(&p)
		if err != nil || seen[n] {
			t.Errorf("pod %s: node %q err %v (duplicate %v)", p.Name, n, err, seen[n])
		}
		seen[n] = true
		if len(p.Spec.Tolerations) != 7 {
			t.Errorf("pod %s has %d tolerations", p.Name, len(p.Spec.Tolerations))
		}
	}
	var events *corev1.EventList
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		events, err = client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(events.Items) >= 4, err
	})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	for _, e := range events.Items {
		if e.Source.Component != "daemonset-controller" || e.Reason != kit.ReasonSuccessfulCreate {
			t.Errorf("event %s %s from %s", e.Reason, e.Message, e.Source.Component)
		}
	}
}

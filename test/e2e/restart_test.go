package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/test/cluster"
)

// TestRestartWithBacklog restarts quartet on a data dir that holds a backlog
// of pods. Such restarts used to print the ready line and exit seconds later,
// when kube-controller-manager gave up waiting for the apiserver's post-start
// hooks. The restart must print its ready line only once every component is
// ready, and then stay up: kube-controller-manager works (a Deployment gets
// its ReplicaSet) and no component stops. $QUARTET_BACKLOG_PODS sets the
// backlog (default 2,000); BenchmarkRestartWithBacklog measures the restart.
func TestRestartWithBacklog(t *testing.T) {
	n := backlogPods(t, 2000)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: noNodes()})
	createPods(t, ctx, c, n)
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	took := restart(t, c)
	t.Logf("restart with %d pods in etcd: ready after %s", n, took.Round(100*time.Millisecond))
	ready := time.Now()
	if got := kubectl(t, c, "", "-n", "backlog", "get", "pods", "-o", "name"); strings.Count(got, "pod/") != n {
		t.Errorf("after the restart %d pods, want %d", strings.Count(got, "pod/"), n)
	}
	kubectl(t, c, "", "create", "deployment", "after-restart", "--image=nginx:1.27")
	waitFor(t, ctx, "kube-controller-manager to create the Deployment's ReplicaSet", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "rs", "-l", "app=after-restart", "-o", "name")
		return err == nil && strings.HasPrefix(out, "replicaset.apps/after-restart-"), out
	})
	// The failure this guards against came 10-40 s after the ready line.
	for time.Since(ready) < 45*time.Second {
		if err := syscall.Kill(c.Pid(), 0); err != nil {
			t.Fatalf("quartet up exited after its ready line:\n%s", c.Output.String())
		}
		time.Sleep(time.Second)
	}
	_, after, _ := strings.Cut(c.Output.String(), "--- restart ---")
	for _, bad := range []string{"stopped", "restarting", "did not start"} {
		if strings.Contains(after, bad) {
			t.Errorf("a component stopped after the restart (%q):\n%s", bad, after)
		}
	}
}

// BenchmarkRestartWithBacklog measures a restart (SIGTERM to the next ready
// line) on a data dir holding $QUARTET_BACKLOG_PODS pods (default 14,000,
// the backlog of the report that found restarts failing).
func BenchmarkRestartWithBacklog(b *testing.B) {
	n := backlogPods(b, 14000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c := start(b, cluster.Options{Args: noNodes(), ReadyTimeout: 10 * time.Minute})
	createPods(b, ctx, c, n)
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		if _, err := c.Stop(); err != nil {
			b.Fatal(err)
		}
		total += restart(b, c)
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "s-to-ready")
	b.ReportMetric(float64(n), "pods")
	b.Logf("progress while waiting:\n%s", c.Output.String())
}

// restart starts a stopped cluster again and returns how long it took to
// print its ready line.
func restart(t testing.TB, c *cluster.Cluster) time.Duration {
	t.Helper()
	began := time.Now()
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	return time.Since(began)
}

func backlogPods(t testing.TB, def int) int {
	s := os.Getenv("QUARTET_BACKLOG_PODS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("QUARTET_BACKLOG_PODS=%q: want a number above 0", s)
	}
	return n
}

// createPods creates n Pending pods (there are no nodes) in namespace
// backlog, sixteen requests at a time.
func createPods(t testing.TB, ctx context.Context, c *cluster.Cluster, n int) {
	t.Helper()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "backlog"}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// kube-controller-manager gives the namespace its default service
	// account, without which a pod is refused.
	for {
		_, err := client.CoreV1().ServiceAccounts("backlog").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no default service account in namespace backlog: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	next := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%05d", i), Labels: map[string]string{"app": "backlog"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}}}},
				}
				if _, err := client.CoreV1().Pods("backlog").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var failed error
	for i := 0; i < n && failed == nil; i++ {
		select {
		case next <- i:
		case failed = <-errs:
		}
	}
	close(next)
	wg.Wait()
	if failed == nil && len(errs) > 0 {
		failed = <-errs
	}
	if failed != nil {
		t.Fatalf("creating the backlog: %v", failed)
	}
}

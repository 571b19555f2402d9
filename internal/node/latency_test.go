package node

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestBoundToRunningLatency measures, against a running quartet
// (QUARTET_LATENCY_KUBECONFIG), how long a pod created already bound to a
// node takes to be reported Running: QUARTET_LATENCY_PODS pods (default 50)
// of each runtime, one at a time. The targets are 50 ms (sim) and 200 ms
// (process) median.
func TestBoundToRunningLatency(t *testing.T) {
	kc := os.Getenv("QUARTET_LATENCY_KUBECONFIG")
	if kc == "" {
		t.Skip("set QUARTET_LATENCY_KUBECONFIG to a running quartet's kubeconfig")
	}
	n := 50
	if s := os.Getenv("QUARTET_LATENCY_PODS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	for _, kind := range []string{"sim", "process"} {
		var lat []time.Duration
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("latency-%s-%d", kind, i)
			pod := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
				Spec: v1.PodSpec{
					NodeName:                      "node-1",
					TerminationGracePeriodSeconds: new(int64),
					Containers:                    []v1.Container{{Name: "c", Image: "nginx:1.27"}},
				},
			}
			if kind == "process" {
				pod.Spec.Containers[0].Image = "busybox"
				pod.Spec.Containers[0].Command = []string{"sleep", "3600"}
			}
			w, err := client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			timeout := time.After(30 * time.Second)
		wait:
			for {
				select {
				case ev := <-w.ResultChan():
					if p, ok := ev.Object.(*v1.Pod); ok && ev.Type == watch.Modified && p.Status.Phase == v1.PodRunning {
						lat = append(lat, time.Since(start))
						break wait
					}
				case <-timeout:
					t.Fatalf("%s not Running after 30s", name)
				}
			}
			w.Stop()
		}
		for i := 0; i < n; i++ {
			_ = client.CoreV1().Pods("default").Delete(ctx, fmt.Sprintf("latency-%s-%d", kind, i), metav1.DeleteOptions{})
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("%s: bound to Running median %s, p90 %s, max %s (%d pods)", kind, lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1], len(lat))
	}
}

package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
)

// BenchmarkProvision measures this package's share of claim-to-Bound: from
// the moment a claim carries the scheduler's selected-node annotation (and the
// PV controller's storage-provisioner one) to the moment its PV exists, with
// the directory made on disk. The apiserver is a fake clientset, so this is
// the provisioner's own latency; bindlatency measures the whole path on a
// running cluster.
func BenchmarkProvision(b *testing.B) {
	client := fake.NewClientset(testNode("node-1"))
	root := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	go func() { _ = Run(ctx, Config{Client: client, Root: root}, func() { close(ready) }) }()
	<-ready
	w, err := client.CoreV1().PersistentVolumes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := pendingClaim(fmt.Sprintf("data-web-%d", i), DefaultClass, "node-1", v1.ReadWriteOnce)
		c.UID = types.UID(fmt.Sprintf("bench-%d", i))
		start := time.Now()
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, c, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if pv, ok := ev.Object.(*v1.PersistentVolume); ok && ev.Type == watch.Added && pv.Name == "pvc-"+string(c.UID) {
				break
			}
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "ms-p99")
}

package node

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// TestScaleSim runs QUARTET_NODE_SCALE=nodes,pods sim nodes and pods on the
// fake clientset and reports the time from pod creation to Running and the
// heap. The fake clientset dominates both (it rebuilds a REST mapper on every
// write and keeps every object twice), so this is a smoke test of the host at
// size, not a benchmark; measure latency against a real apiserver.
func TestScaleSim(t *testing.T) {
	spec := os.Getenv("QUARTET_NODE_SCALE")
	if spec == "" {
		t.Skip("set QUARTET_NODE_SCALE=nodes,pods to run")
	}
	var nodes, pods int
	if _, err := fmt.Sscanf(spec, "%d,%d", &nodes, &pods); err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	h, err := NewHost(HostConfig{Client: client, DataDir: t.TempDir(), Runtime: RuntimeSim, Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	h.recorderFor = func(string) record.EventRecorder { return &record.FakeRecorder{} }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Run(ctx) }()
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("node-%d", i+1)
		_, _ = client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.NodeSpec{PodCIDR: fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256)}}, metav1.CreateOptions{})
	}
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < nodes; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := h.AddNode(ctx, NodeSpec{Name: fmt.Sprintf("node-%d", i+1)}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	t.Logf("%d nodes registered in %s", nodes, time.Since(start))

	created := map[types.UID]time.Time{}
	var mu sync.Mutex
	var lat []time.Duration
	done := make(chan struct{})
	seen := map[string]bool{}
	client.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if !strings.Contains(string(pa.GetPatch()), `"phase":"Running"`) {
			return false, nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[pa.GetName()] {
			seen[pa.GetName()] = true
			var n int
			_, _ = fmt.Sscanf(pa.GetName(), "p-%d", &n)
			lat = append(lat, time.Since(created[types.UID(fmt.Sprintf("uid-%d", n))]))
			if len(lat) == pods {
				close(done)
			}
		}
		return false, nil, nil
	})
	start = time.Now()
	for i := 0; i < pods; i++ {
		uid := types.UID(fmt.Sprintf("uid-%d", i))
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "default", UID: uid},
			Spec: v1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%nodes+1), RestartPolicy: v1.RestartPolicyAlways,
				Containers: []v1.Container{{Name: "c", Image: "nginx"}}}}
		mu.Lock()
		created[uid] = time.Now()
		mu.Unlock()
		if _, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("only %d of %d pods Running", len(lat), pods)
	}
	t.Logf("%d pods Running %s after the first was created", pods, time.Since(start))
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("creation to Running: median %s, p99 %s", lat[len(lat)/2], lat[len(lat)*99/100])
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	t.Logf("heap in use %d MiB, sys %d MiB (includes the fake clientset's copies of every object)", ms.HeapInuse>>20, ms.Sys>>20)
	if path := os.Getenv("QUARTET_NODE_SCALE_HEAP"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
	}
}

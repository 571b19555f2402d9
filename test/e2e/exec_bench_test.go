package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

// BenchmarkExecAndPortForward measures issue 16's targets on a warm
// one-node cluster: the median wall-clock time of `kubectl exec POD --
// true` with each kubectl (target: under 150 ms), and the throughput of one
// connection through `kubectl port-forward` (target: at least 50 MB/s).
// It starts its own cluster, so run it once:
//
//	QUARTET_BIN=$PWD/bin/quartet go test ./test/e2e -run '^$' -bench ExecAndPortForward -benchtime 1x
func BenchmarkExecAndPortForward(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := buildPodServer(b)
	c := start(b, cluster.Options{Args: []string{"--nodes=1"}})
	port, _ := cluster.FreePort()
	port2, _ := cluster.FreePort()
	kubectl(b, c, strings.NewReplacer("PODSERVER", dir, "PORT1", itoa(port), "PORT2", itoa(port2)).Replace(execPods), "apply", "-f", "-")
	kubectl(b, c, "", "wait", "--for=condition=Ready", "pod/web", "--timeout=120s")

	const execs = 40
	for _, k := range kubectls(b, c) {
		// Warm: the first exec sets up the apiserver's connection to the node.
		for i := 0; i < 3; i++ {
			if out, errOut, code := k.run(ctx, "", "exec", "web", "--", "true"); code != 0 {
				b.Fatalf("%s exec: %d %s %s", k.name, code, out, errOut)
			}
		}
		times := make([]time.Duration, 0, execs)
		for i := 0; i < execs; i++ {
			t0 := time.Now()
			if out, errOut, code := k.run(ctx, "", "exec", "web", "--", "true"); code != 0 {
				b.Fatalf("%s exec: %d %s %s", k.name, code, out, errOut)
			}
			times = append(times, time.Since(t0))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		median := times[len(times)/2]
		b.ReportMetric(float64(median.Microseconds())/1000, "ms-exec-median-"+k.name)
		fmt.Printf("kubectl exec web -- true (%s): median %s, p90 %s, min %s over %d runs (target: median under 150ms)\n",
			k.name, median.Round(time.Millisecond), times[execs*9/10].Round(time.Millisecond), times[0].Round(time.Millisecond), execs)
	}

	k := kubectls(b, c)[0]
	local, _ := cluster.FreePort()
	startPortForward(b, ctx, k, "pod/web", fmt.Sprintf("%d:%d", local, port))
	const size = 512 << 20
	for round := 0; round < 2; round++ { // the first round warms the connection
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/zero?n=%d", local, size), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		if round == 1 {
			mbps := float64(size) / 1e6 / time.Since(t0).Seconds()
			b.ReportMetric(mbps, "MB/s-port-forward")
			fmt.Printf("kubectl port-forward (%s), one connection: %.0f MB/s for %d MiB (target: at least 50 MB/s)\n", k.name, mbps, size>>20)
		}
	}
}

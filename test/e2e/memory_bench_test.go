package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// BenchmarkPodChurnMemory measures what quartet's process holds in memory
// when a Job creates many pods at once (issue 13 item 9), on four sim
// nodes whose pod cap (110 each) leaves most of them Pending at first:
//
//   - churn: a Job of N pods that succeed at once, so every pod passes
//     through the scheduler and a node agent; then the Job is deleted.
//     Printed: live heap and RSS at the end compared with before, and which
//     parts of the process hold what is still live (by owner, from heap
//     profiles taken after a garbage collection), 30 s after the pods are
//     gone and again ("settled") once pods changed again (a Job of 3 pods)
//     and 2.5 min passed.
//   - pending: a Job of N pods that run for an hour: 440 run, the rest stay
//     Pending. Printed: live heap and RSS per Pending pod, CPU seconds per
//     second while they wait (by component), how fast deleting the Job
//     removes its pods.
//
// N is $QUARTET_CHURN_PODS (default 3,000; the report used
// 100,000). It starts its own cluster:
//
//	QUARTET_BIN=$PWD/bin/quartet go test ./test/e2e -run '^$' -bench PodChurnMemory -benchtime 1x -timeout 2h
func BenchmarkPodChurnMemory(b *testing.B) {
	n := churnPods(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	c := start(b, cluster.Options{Args: []string{"--nodes=4", "--runtime=sim"}})
	client, err := c.Client()
	if err != nil {
		b.Fatal(err)
	}
	ctl, err := control.NewClient(datadir.Dir(c.DataDir).ControlSocket())
	if err != nil {
		b.Fatal(err)
	}
	m := &memProbe{b: b, ctx: ctx, pid: c.Pid(), ctl: ctl}
	time.Sleep(20 * time.Second) // let start-up's own garbage go
	base := m.sample("start")
	for range b.N {
		// Every pod through a node agent, then gone.
		began := time.Now()
		createJob(b, ctx, client, "churn", n, "0")
		waitJob(b, ctx, "Job churn to complete", client, "churn", func(j *batchv1.Job) bool { return j.Status.Succeeded >= int32(n) })
		ran := time.Since(began)
		done := m.sample("done")
		deleted := deleteJob(b, ctx, client, "churn")
		b.Logf("Job churn: %d pods succeeded in %s (%.0f pods/s); its pods deleted in %s", n, ran.Round(time.Second), float64(n)/ran.Seconds(), deleted.Round(time.Second))
		time.Sleep(30 * time.Second)
		after := m.sample("after")
		b.Logf("live heap once the pods are gone, by owner (change since the start):\n%s", ownersDiff(base.prof, after.prof))
		b.ReportMetric(float64(done.heap-base.heap)/(1<<20), "heap-MB-done")
		b.ReportMetric(float64(after.heap-base.heap)/(1<<20), "heap-MB-held-after")
		b.ReportMetric(float64(after.rss-base.rss)/(1<<20), "rss-MB-held-after")

		// The apiserver's watch cache keeps its history of pod changes
		// (each with its object) until new pod changes arrive: once the
		// history is older than its 75 s window, each new change halves it.
		// A cluster in use changes pods; so does this: a Job of 3 pods,
		// run and deleted, then time for a forced collection (every 2 min
		// at most) and for quartet to hand the freed heap back.
		time.Sleep(60 * time.Second)
		createJob(b, ctx, client, "poke", 3, "0")
		waitJob(b, ctx, "Job poke to complete", client, "poke", func(j *batchv1.Job) bool { return j.Status.Succeeded >= 3 })
		deleteJob(b, ctx, client, "poke")
		time.Sleep(150 * time.Second)
		settled := m.sample("settled")
		b.Logf("live heap once pods changed again, by owner (change since the start):\n%s", ownersDiff(base.prof, settled.prof))
		b.ReportMetric(float64(settled.heap-base.heap)/(1<<20), "heap-MB-held-settled")
		b.ReportMetric(float64(settled.rss-base.rss)/(1<<20), "rss-MB-held-settled")

		// Pending pods beyond the nodes' cap.
		createJob(b, ctx, client, "hold", n, "3600")
		waitJob(b, ctx, "all pods of Job hold to exist", client, "hold", func(j *batchv1.Job) bool { return activeOf(j) >= int32(n) })
		time.Sleep(20 * time.Second)
		pending := m.sample("pending")
		pendingPods := countPods(b, ctx, client, corev1.PodPending)
		b.Logf("%d pods exist, %d of them Pending; live heap by owner (change since the pods were gone):\n%s", n, pendingPods, ownersDiff(settled.prof, pending.prof))
		cpu := m.cpu(30 * time.Second)
		deleted = deleteJob(b, ctx, client, "hold")
		b.ReportMetric(float64(pending.heap-settled.heap)/float64(n)/1024, "heap-KB/pending-pod")
		b.ReportMetric(float64(pending.rss-settled.rss)/float64(n)/1024, "rss-KB/pending-pod")
		b.ReportMetric(cpu, "cpu-s/s-pending")
		b.ReportMetric(float64(n)/deleted.Seconds(), "pending-pods-deleted/s")
	}
	b.ReportMetric(float64(n), "pods")
}

func churnPods(b *testing.B) int {
	s := os.Getenv("QUARTET_CHURN_PODS")
	if s == "" {
		return 3000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("QUARTET_CHURN_PODS=%q: want a number above 0", s)
	}
	return n
}

// createJob creates a Job of n sim pods, all at once, each running for
// seconds.
func createJob(b *testing.B, ctx context.Context, client kubernetes.Interface, name string, n int, seconds string) {
	b.Helper()
	count := int32(n)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Completions: &count, Parallelism: &count, BackoffLimit: &count,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"quartet.dev/sim-exit-code": "0", "quartet.dev/sim-run-seconds": seconds}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
	if _, err := client.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

func activeOf(j *batchv1.Job) int32 { return j.Status.Active + j.Status.Succeeded + j.Status.Failed }

func waitJob(b *testing.B, ctx context.Context, what string, client kubernetes.Interface, name string, done func(*batchv1.Job) bool) {
	b.Helper()
	waitFor(b, ctx, what, func() (bool, string) {
		j, err := client.BatchV1().Jobs("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return done(j), fmt.Sprintf("%+v", j.Status)
	})
}

// deleteJob deletes a Job as kubectl does (its pods in the background) and
// returns how long until none of the namespace's pods is left.
func deleteJob(b *testing.B, ctx context.Context, client kubernetes.Interface, name string) time.Duration {
	b.Helper()
	began := time.Now()
	bg := metav1.DeletePropagationBackground
	if err := client.BatchV1().Jobs("default").Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		b.Fatal(err)
	}
	for {
		if left := countPods(b, ctx, client, ""); left == 0 {
			return time.Since(began)
		}
		select {
		case <-ctx.Done():
			b.Fatalf("Job %s's pods not deleted", name)
		case <-time.After(2 * time.Second):
		}
	}
}

// countPods counts the default namespace's pods (in phase, if not "") from
// the apiserver's cache.
func countPods(b *testing.B, ctx context.Context, client kubernetes.Interface, phase corev1.PodPhase) int {
	b.Helper()
	opts := metav1.ListOptions{ResourceVersion: "0"}
	if phase != "" {
		opts.FieldSelector = "status.phase=" + string(phase)
	}
	l, err := client.CoreV1().Pods("default").List(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	return len(l.Items)
}

type memProbe struct {
	b   *testing.B
	ctx context.Context
	pid int
	ctl *control.Client
}

type memSample struct {
	heap, rss int64 // bytes
	prof      *profile.Profile
}

// sample takes a heap profile (after a garbage collection) and the RSS.
func (m *memProbe) sample(what string) memSample {
	m.b.Helper()
	raw, err := m.ctl.HeapProfile(m.ctx)
	if err != nil {
		m.b.Fatal(err)
	}
	prof, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		m.b.Fatal(err)
	}
	s := memSample{prof: prof, rss: rssOf(m.b, m.pid)}
	for _, v := range inuse(prof) {
		s.heap += v
	}
	m.b.Logf("%-8s live heap %6.0f MB, RSS %6.0f MB", what, float64(s.heap)/(1<<20), float64(s.rss)/(1<<20))
	return s
}

// cpu returns the process's CPU seconds per second over d, and logs them by
// component.
func (m *memProbe) cpu(d time.Duration) float64 {
	m.b.Helper()
	if err := m.ctl.StartCPUProfile(m.ctx); err != nil {
		m.b.Fatal(err)
	}
	time.Sleep(d)
	var out struct {
		Total      float64            `json:"total"`
		Components map[string]float64 `json:"components"`
	}
	if err := m.ctl.StopCPUProfile(m.ctx, &out); err != nil {
		m.b.Fatal(err)
	}
	names := make([]string, 0, len(out.Components))
	for k := range out.Components {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return out.Components[names[i]] > out.Components[names[j]] })
	var sb strings.Builder
	for _, k := range names {
		fmt.Fprintf(&sb, "  %-28s %6.2f CPU-s/s\n", k, out.Components[k]/d.Seconds())
	}
	m.b.Logf("CPU while the pods wait, %.2f CPU-s/s in all:\n%s", out.Total/d.Seconds(), sb.String())
	return out.Total / d.Seconds()
}

func rssOf(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// heapOwners name the parts of the process that keep objects, by the
// package of a frame on the allocating stack. The first owner found going
// from the allocation towards the goroutine's start is charged: a pod decoded
// by an informer's reflector is the informer's, one stored by the
// apiserver's watch cache is the watch cache's.
var heapOwners = []struct{ prefix, name string }{
	{"k8s.io/apiserver/pkg/storage/cacher", "apiserver watch cache"},
	{"k8s.io/apiserver/pkg/storage/etcd3", "apiserver etcd3 storage"},
	{"k8s.io/apiserver/", "apiserver (other)"},
	{"go.etcd.io/etcd/server/v3/storage/mvcc", "etcd mvcc (in-memory index)"},
	{"go.etcd.io/raft", "etcd raft log"},
	{"go.etcd.io/bbolt", "etcd bbolt"},
	{"go.etcd.io/etcd/client", "etcd client"},
	{"go.etcd.io/etcd/", "etcd (other)"},
	{"k8s.io/client-go/tools/record", "event broadcaster"},
	{"k8s.io/client-go/tools/events", "event broadcaster"},
	{"quartet.dev/quartet/internal/node", "node agents"},
	{"quartet.dev/quartet/internal/controllers", "workload controllers"},
	{"quartet.dev/quartet/internal/ui", "web UI"},
	{"quartet.dev/quartet/internal/dns", "cluster DNS"},
	{"k8s.io/kubernetes/pkg/scheduler", "kube-scheduler"},
	{"k8s.io/kubernetes/pkg/controller", "kube-controller-manager"},
	{"k8s.io/client-go/tools/cache", "informers (client-go cache)"},
	{"k8s.io/client-go/", "client-go (other)"},
	{"quartet.dev/quartet/", "quartet (other)"},
	{"k8s.io/kubernetes/", "kubernetes (other)"},
}

func ownerOf(s *profile.Sample) string {
	for _, loc := range s.Location {
		for i := len(loc.Line) - 1; i >= 0; i-- { // inlined frames first
			fn := loc.Line[i].Function
			if fn == nil {
				continue
			}
			for _, o := range heapOwners {
				if strings.HasPrefix(fn.Name, o.prefix) {
					return o.name
				}
			}
		}
	}
	return "runtime and other"
}

// inuse sums a heap profile's live bytes by owner.
func inuse(p *profile.Profile) map[string]int64 {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" {
			idx = i
		}
	}
	out := map[string]int64{}
	if idx < 0 {
		return out
	}
	for _, s := range p.Sample {
		out[ownerOf(s)] += s.Value[idx]
	}
	return out
}

// ownersDiff prints live bytes by owner in after, with the change from
// before, largest first.
func ownersDiff(before, after *profile.Profile) string {
	b, a := inuse(before), inuse(after)
	names := make([]string, 0, len(a))
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return a[names[i]] > a[names[j]] })
	var sb strings.Builder
	for _, k := range names {
		fmt.Fprintf(&sb, "  %-30s %7.1f MB (%+7.1f MB)\n", k, float64(a[k])/(1<<20), float64(a[k]-b[k])/(1<<20))
	}
	return sb.String()
}

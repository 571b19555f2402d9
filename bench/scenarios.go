package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/datadir"
)

// Targets shared by every scenario that compares the modes.
var (
	noSlower  = RatioAtMost(1, "ratio <= 1 (no slower than upstream)")
	noMoreAPI = Labeled(APIRatioAtMost(1.01), "API requests per pod <= upstream's, within 1% (issue 18)")
	// Issue 18's reaction-latency target.
	fasterChain = RatioAtMost(0.9, "ratio <= 0.9 (issue 18)")
	// Issue 18's target for creation-bound scenarios (issues 6 and 7 had 80%).
	ceiling60 = Labeled(CeilingAtLeast(0.6), ">= 60% of the bare-client ceiling (issue 18)")
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func trackPods(ctx context.Context, e *Env, ns string, preds map[string]func(*corev1.Pod) bool) (*Tracker[*corev1.Pod], error) {
	return Track(ctx, e.Client.CoreV1().RESTClient(), "pods", ns, preds)
}

func trackJobs(ctx context.Context, e *Env, preds map[string]func(*batchv1.Job) bool) (*Tracker[*batchv1.Job], error) {
	return Track(ctx, e.Client.BatchV1().RESTClient(), "jobs", e.NS, preds)
}

// startupScenario restarts the session's cluster on its data dir (a warm
// start; the session's own first start was the cold one), then lets it
// idle and reads its resident memory, in both modes.
func startupScenario(s Size) *Scenario {
	name := "quartet up to ready, warm"
	memName := fmt.Sprintf("idle resident memory after %s", s.Idle)
	return &Scenario{
		ID: "startup", OwnWindow: true, Estimate: 15 * time.Second,
		Metrics: []Metric{
			{Key: "warm", Name: name, Unit: "s", Targets: []Target{QuartetAtMost(3, "< 3 s median (issue 2)")}},
			{Key: "cold", Name: "quartet up to ready, cold (new data dir)", Unit: "s"},
			{Key: "rss", Name: memName, Unit: "MB", Targets: []Target{QuartetAtMost(400, "< 400 MB (issue 2)"), noMoreAPI},
				Note: "API requests and CPU columns: the workload controllers while idle"},
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			var warm []float64
			for range s.WarmStarts {
				if _, err := e.Cluster.Stop(); err != nil {
					return nil, err
				}
				t0 := time.Now()
				if err := e.Cluster.Restart(); err != nil {
					return nil, err
				}
				warm = append(warm, time.Since(t0).Seconds())
			}
			ctl, err := control.NewClient(datadir.Dir(e.Cluster.DataDir).ControlSocket())
			if err != nil {
				return nil, err
			}
			e.Control = ctl
			out := map[string]float64{"warm": Median(warm)}
			if cold, ok := e.Shared["cold-start"].(time.Duration); ok {
				out["cold"] = cold.Seconds()
			}
			w, err := OpenWindow(ctx, e)
			if err != nil {
				return out, err
			}
			select { // idling is the point, not a poll
			case <-time.After(s.Idle):
			case <-ctx.Done():
			}
			run := NewRun()
			w.Close(ctx, e, &run)
			out["_api"], out["_cpu"], out["_cpu_total"] = run.APIRequests, run.CPUSeconds, run.CPUTotal
			rss, _, err := ProcessMemoryMB(e.Cluster.Pid())
			if err != nil {
				return out, err
			}
			out["rss"] = rss
			e.SaveHeapProfile(ctx, "idle")
			return out, nil
		},
	}
}

// latencyScenario times pods created already bound to a node until the
// node agent reports them Running, one at a time. No workload controller
// is involved: the ratio shows the noise between the modes.
func latencyScenario(s Size) *Scenario {
	return &Scenario{
		ID: "node-latency", Estimate: 3 * time.Second,
		Metrics: []Metric{{Key: "sim", Name: fmt.Sprintf("node agent: pod bound→Running (sim), median of %d", s.LatencyPods),
			Unit: "ms", Targets: []Target{QuartetAtMost(50, "< 50 ms median (issue 3)"), noMoreAPI},
			Note: "no workload controller involved: the ratio is the noise between two clusters"}},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			tr, err := trackPods(ctx, e, e.NS, map[string]func(*corev1.Pod) bool{"running": isRunning})
			if err != nil {
				return nil, err
			}
			defer tr.Stop()
			var lat []float64
			for i := range s.LatencyPods {
				name := fmt.Sprintf("bound-%d", i)
				p := podFromTemplate(e.NS, name, runningTemplate(nil))
				p.Spec.NodeName = "node-1"
				start := time.Now()
				if _, err := e.Client.CoreV1().Pods(e.NS).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					return nil, err
				}
				at, err := tr.Wait(ctx, name+" Running", func(v View[*corev1.Pod]) bool {
					return v.Any("running", func(p *corev1.Pod) bool { return p.Name == name })
				})
				if err != nil {
					return nil, err
				}
				lat = append(lat, ms(at.Sub(start)))
			}
			return map[string]float64{"sim": Median(lat)}, nil
		},
		Teardown: func(ctx context.Context, e *Env) error {
			zero := int64(0)
			return e.Client.CoreV1().Pods(e.NS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		},
	}
}

// The steps of a latency chain, each timed at the bench's watch: the
// controller's reaction (the event that allows the next pod to its
// creation), the scheduler's binding, the node agent's start. Their medians
// say where a chain's time goes in each mode.
const (
	stepController = "step-controller"
	stepScheduler  = "step-scheduler"
	stepNode       = "step-node"
)

func isScheduled(p *corev1.Pod) bool { return p.Spec.NodeName != "" }

func stepMetrics(prefix, allowedBy, done string) []Metric {
	note := "a step of the chain, median over the pods (no target: it says where the time goes)"
	return []Metric{
		{Key: stepController, Name: prefix + allowedBy + " → pod created (controller)", Unit: "ms", Note: note},
		{Key: stepScheduler, Name: prefix + "pod created → bound (scheduler)", Unit: "ms", Note: note},
		{Key: stepNode, Name: prefix + "pod bound → " + done + " (node agent)", Unit: "ms", Note: note},
	}
}

// orderedScenario: StatefulSet OrderedReady 0→N, time to all Ready, and
// the median of each step between one pod Ready and the next Ready.
func orderedScenario(s Size) *Scenario {
	n := s.OrderedReplicas
	targets := []Target{noSlower, fasterChain, noMoreAPI}
	if n >= 50 {
		targets = append(targets, QuartetAtMost(2, "< 2 s (issue 6 aim)"))
	}
	prefix := fmt.Sprintf("StatefulSet OrderedReady 0→%d, per pod: ", n)
	return &Scenario{
		ID: "sts-ordered", Estimate: 3 * time.Second, PerPod: func(Size) int { return n },
		Metrics: append([]Metric{{Key: "ready", Name: fmt.Sprintf("StatefulSet OrderedReady 0→%d: all Ready", n),
			Unit: "s", Targets: targets}}, stepMetrics(prefix, "previous pod Ready", "Ready")...),
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			tr, err := trackPods(ctx, e, e.NS, map[string]func(*corev1.Pod) bool{"ready": isReady, "scheduled": isScheduled})
			if err != nil {
				return nil, err
			}
			defer tr.Stop()
			start := time.Now()
			if _, err := e.Client.AppsV1().StatefulSets(e.NS).Create(ctx, statefulSet("web", n, appsv1.OrderedReadyPodManagement), metav1.CreateOptions{}); err != nil {
				return nil, err
			}
			at, err := tr.Wait(ctx, "all Ready", func(v View[*corev1.Pod]) bool { return v.Count("ready") >= n })
			if err != nil {
				return nil, err
			}
			out := orderedSteps(tr, start)
			out["ready"] = at.Sub(start).Seconds()
			return out, nil
		},
	}
}

// orderedSteps splits an OrderedReady chain: for each pod, from the
// previous pod Ready (the set's creation for pod 0) to its creation, to its
// binding, to Ready.
func orderedSteps(tr *Tracker[*corev1.Pod], start time.Time) map[string]float64 {
	byName := map[string]Seen[*corev1.Pod]{}
	for _, c := range tr.Firsts(Exists) {
		byName[c.Obj.Name] = c
	}
	var ctl, sched, node []float64
	prevReady := start
	for i := 0; ; i++ {
		c, ok := byName[fmt.Sprintf("web-%d", i)]
		if !ok {
			break
		}
		b, ok1 := tr.First("scheduled", c.Obj.UID)
		r, ok2 := tr.First("ready", c.Obj.UID)
		if !ok1 || !ok2 {
			break
		}
		ctl = append(ctl, ms(c.At.Sub(prevReady)))
		sched = append(sched, ms(b.At.Sub(c.At)))
		node = append(node, ms(r.At.Sub(b.At)))
		prevReady = r.At
	}
	return map[string]float64{stepController: Median(ctl), stepScheduler: Median(sched), stepNode: Median(node)}
}

// parallelScenario: StatefulSet Parallel 0→N, time to all created (the
// creation rate, against the bare-client ceiling) and to all Ready.
func parallelScenario(s Size) *Scenario {
	n := s.ParallelPods
	return &Scenario{
		ID: "sts-parallel", Estimate: 10 * time.Second, Breakdown: func(Size) int { return n }, PerPod: func(Size) int { return n },
		Metrics: []Metric{
			{Key: "created", Name: fmt.Sprintf("StatefulSet Parallel 0→%d: all created", n), Unit: "s", VsCeiling: true,
				Targets: []Target{RatioAtMost(1, "creation rate at least upstream's (issue 6)"),
					Labeled(CeilingAtLeast(0.8), ">= 80% of the bare-client ceiling (issue 6)"), ceiling60, noMoreAPI}},
			{Key: "ready", Name: fmt.Sprintf("StatefulSet Parallel 0→%d: all Ready", n), Unit: "s", Targets: []Target{noSlower}},
		},
		Ceiling: func(e *Env) CeilingSpec {
			return CeilingSpec{N: n, Pod: func(ns string, i int) *corev1.Pod {
				return podFromTemplate(ns, fmt.Sprintf("web-%d", i), runningTemplate(map[string]string{"app": "web"}))
			}}
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			return createdAndReady(ctx, e, n, func() error {
				_, err := e.Client.AppsV1().StatefulSets(e.NS).Create(ctx, statefulSet("web", n, appsv1.ParallelPodManagement), metav1.CreateOptions{})
				return err
			})
		},
	}
}

const revisionAnnotation = "bench.quartet.dev/revision"

// rollingScenario: a rolling update of an N-pod StatefulSet, from the
// template change to every pod at the new template and Ready.
func rollingScenario(s Size) *Scenario {
	n := s.RollingPods
	updated := func(p *corev1.Pod) bool { return isReady(p) && p.Annotations[revisionAnnotation] == "2" }
	return &Scenario{
		ID: "sts-rolling", Estimate: 8 * time.Second, PerPod: func(Size) int { return n },
		Metrics: []Metric{{Key: "updated", Name: fmt.Sprintf("StatefulSet rolling update of %d pods: all updated and Ready", n),
			Unit: "s", Targets: []Target{noSlower, noMoreAPI}}},
		Setup: func(ctx context.Context, e *Env) error {
			tr, err := trackPods(context.WithoutCancel(ctx), e, e.NS, map[string]func(*corev1.Pod) bool{"ready": isReady, "updated": updated})
			if err != nil {
				return err
			}
			e.SetData(tr)
			if _, err := e.Client.AppsV1().StatefulSets(e.NS).Create(ctx, statefulSet("web", n, appsv1.ParallelPodManagement), metav1.CreateOptions{}); err != nil {
				return err
			}
			_, err = tr.Wait(ctx, "the set Ready before its update", func(v View[*corev1.Pod]) bool { return v.Count("ready") >= n })
			return err
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			tr := e.Data().(*Tracker[*corev1.Pod])
			defer tr.Stop()
			patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:"2"}}}}}`, revisionAnnotation)
			start := time.Now()
			if _, err := e.Client.AppsV1().StatefulSets(e.NS).Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				return nil, err
			}
			at, err := tr.Wait(ctx, "all updated and Ready", func(v View[*corev1.Pod]) bool { return v.Count("updated") >= n })
			if err != nil {
				return nil, err
			}
			return map[string]float64{"updated": at.Sub(start).Seconds()}, nil
		},
	}
}

func nodeNames(ctx context.Context, e *Env) ([]string, error) {
	list, err := e.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names, nil
}

const daemonSetNamespace = "daemonset"

// daemonSetScenario: a DaemonSet on every node of the session, time to all
// created (against the ceiling) and all Ready.
func daemonSetScenario(s Size) *Scenario {
	name := fmt.Sprintf("DaemonSet on %d nodes", s.DaemonNodes)
	return &Scenario{
		ID: "ds", Namespace: daemonSetNamespace, Estimate: 5 * time.Second,
		Breakdown: func(s Size) int { return s.DaemonNodes },
		Metrics: []Metric{
			{Key: "created", Name: name + ": all created", Unit: "s", VsCeiling: true,
				Targets: []Target{noSlower, Labeled(CeilingAtLeast(0.8), ">= 80% of the bare-client ceiling (issue 7)"), ceiling60, noMoreAPI}},
			{Key: "ready", Name: name + ": all Ready", Unit: "s", Targets: []Target{RatioAtMost(1, "ratio <= 1 (issue 7)")}},
		},
		Ceiling: func(e *Env) CeilingSpec {
			nodes, err := nodeNames(context.Background(), e)
			if err != nil || len(nodes) == 0 {
				nodes = []string{"node-1"}
			}
			return CeilingSpec{N: len(nodes), Pod: func(ns string, i int) *corev1.Pod {
				return pinnedPod(ns, fmt.Sprintf("daemon-%d", i), nodes[i%len(nodes)], map[string]string{"app": "daemon"})
			}}
		},
		Setup: nodesSettled,
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			nodes, err := nodeNames(ctx, e)
			if err != nil {
				return nil, err
			}
			n := len(nodes)
			return createdAndReady(ctx, e, n, func() error {
				_, err := e.Client.AppsV1().DaemonSets(e.NS).Create(ctx, daemonSet("daemon"), metav1.CreateOptions{})
				return err
			})
		},
	}
}

// ttlAnnotation is what kube-controller-manager's TTL controller writes on
// every Node once.
const ttlAnnotation = "node.alpha.kubernetes.io/ttl"

// nodesSettled waits until kube-controller-manager has done its start-up
// writes on every Node (the not-ready taint removed, the TTL annotation
// written), as it has when the ceiling is measured after the run: a
// cluster's start with 500 nodes ends at every node Ready, and its node
// lifecycle and TTL controllers wrote about 3 times per node for a few
// seconds after that, inside the DaemonSet's window (and a daemon pod can
// be created only once its node's taint is gone). It gives up after a
// minute, saying so: the scenario then measures a cluster still starting.
func nodesSettled(ctx context.Context, e *Env) error {
	settled := func(n *corev1.Node) bool { return isUntainted(n) && n.Annotations[ttlAnnotation] != "" }
	tr, err := Track[*corev1.Node](ctx, e.Client.CoreV1().RESTClient(), "nodes", "", map[string]func(*corev1.Node) bool{"settled": settled})
	if err != nil {
		return err
	}
	defer tr.Stop()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err = tr.Wait(wctx, "every node settled", func(v View[*corev1.Node]) bool { return v.Count("settled") >= v.Count(Exists) })
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		e.Logf("nodes not settled after a minute (%v): measuring anyway", err)
		return nil
	}
	e.Logf("nodes settled in %s", time.Since(t0).Round(time.Millisecond))
	return nil
}

type nodeAddState struct {
	pods  *Tracker[*corev1.Pod]
	nodes *Tracker[*corev1.Node]
}

// nodeAddScenario: nodes join a cluster whose DaemonSet runs on every
// node; from the Node appearing to its daemon pod Running, median over
// the adds.
func nodeAddScenario(s Size) *Scenario {
	return &Scenario{
		ID: "ds-node-add", Namespace: daemonSetNamespace, Follows: "ds", Estimate: 4 * time.Second,
		Metrics: append([]Metric{{Key: "running", Name: fmt.Sprintf("DaemonSet on %d nodes, node added: its pod Running, median of %d", s.DaemonNodes, s.NodeAdds),
			Unit: "ms", Targets: []Target{noSlower, fasterChain, QuartetAtMost(300, "< 300 ms median (issue 7)"), noMoreAPI}}},
			append([]Metric{
				{Key: stepNodeReady, Name: "DaemonSet, node added: Node seen → Node Ready (node agent)", Unit: "ms", Note: nodeStepNote},
				{Key: stepNodeUntainted, Name: "DaemonSet, node added: Node Ready → not-ready taint gone (kube-controller-manager)", Unit: "ms", Note: nodeStepNote},
			}, stepMetrics("DaemonSet, node added: ", "taint gone", "Running")...)...),
		Setup: func(ctx context.Context, e *Env) error {
			bg := context.WithoutCancel(ctx)
			pods, err := trackPods(bg, e, e.NS, map[string]func(*corev1.Pod) bool{"running": isRunning, "scheduled": isScheduled})
			if err != nil {
				return err
			}
			nodes, err := Track[*corev1.Node](bg, e.Client.CoreV1().RESTClient(), "nodes", "",
				map[string]func(*corev1.Node) bool{"ready": isNodeReady, "untainted": isUntainted})
			if err != nil {
				pods.Stop()
				return err
			}
			e.SetData(&nodeAddState{pods: pods, nodes: nodes})
			// Run alone, the scenario makes its DaemonSet first.
			_, err = e.Client.AppsV1().DaemonSets(e.NS).Create(ctx, daemonSet("daemon"), metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			n := nodes.Count(Exists)
			_, err = pods.Wait(ctx, "the DaemonSet Running everywhere", func(v View[*corev1.Pod]) bool { return v.Count("running") >= n })
			return err
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			st := e.Data().(*nodeAddState)
			defer st.pods.Stop()
			defer st.nodes.Stop()
			var lat []float64
			steps := map[string][]float64{}
			for i := range s.NodeAdds {
				name := fmt.Sprintf("added-%d", i+1)
				added := make(chan error, 1)
				go func() { added <- e.Control.AddNode(ctx, control.NodeSpec{Name: name}) }()
				t0, err := st.nodes.Wait(ctx, "node "+name, func(v View[*corev1.Node]) bool {
					return v.Any(Exists, func(n *corev1.Node) bool { return n.Name == name })
				})
				if err != nil {
					return nil, err
				}
				t1, err := st.pods.Wait(ctx, "the daemon pod on "+name, func(v View[*corev1.Pod]) bool {
					return v.Any("running", func(p *corev1.Pod) bool { return p.Spec.NodeName == name })
				})
				if err != nil {
					return nil, err
				}
				if err := <-added; err != nil {
					return nil, fmt.Errorf("adding %s: %w", name, err)
				}
				lat = append(lat, ms(t1.Sub(t0)))
				nodeAddSteps(st, name, t0, steps)
			}
			out := map[string]float64{"running": Median(lat)}
			for k, xs := range steps {
				out[k] = Median(xs)
			}
			return out, nil
		},
	}
}

// Steps of a node's arrival before its daemon pod can be created: a new
// Node carries the not-ready:NoSchedule taint (the apiserver's
// TaintNodesByCondition admission), which a daemon pod does not tolerate,
// until its agent reports Ready and kube-controller-manager's node
// lifecycle controller removes the taint.
const (
	stepNodeReady     = "step-node-ready"
	stepNodeUntainted = "step-node-untainted"
	nodeStepNote      = "a step of the chain before the DaemonSet controller may act, median over the nodes (the same components in both modes)"
)

func isNodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// isUntainted: no taint keeps a daemon pod off the node (the bench's nodes
// have none of their own).
func isUntainted(n *corev1.Node) bool { return len(n.Spec.Taints) == 0 }

// nodeAddSteps splits the chain from the Node's arrival (t0) to its daemon
// pod Running into steps, appending each step's time to steps.
func nodeAddSteps(st *nodeAddState, node string, t0 time.Time, steps map[string][]float64) {
	var ready, untainted time.Time
	for _, n := range st.nodes.Firsts(Exists) {
		if n.Obj.Name != node {
			continue
		}
		r, ok1 := st.nodes.First("ready", n.Obj.UID)
		u, ok2 := st.nodes.First("untainted", n.Obj.UID)
		if !ok1 || !ok2 {
			return
		}
		ready, untainted = r.At, u.At
	}
	if ready.IsZero() {
		return
	}
	for _, r := range st.pods.Firsts("running") {
		if r.Obj.Spec.NodeName != node {
			continue
		}
		c, ok1 := st.pods.First(Exists, r.Obj.UID)
		b, ok2 := st.pods.First("scheduled", r.Obj.UID)
		if !ok1 || !ok2 {
			return
		}
		steps[stepNodeReady] = append(steps[stepNodeReady], ms(ready.Sub(t0)))
		steps[stepNodeUntainted] = append(steps[stepNodeUntainted], ms(max(0, untainted.Sub(ready))))
		steps[stepController] = append(steps[stepController], ms(c.At.Sub(untainted)))
		steps[stepScheduler] = append(steps[stepScheduler], ms(b.At.Sub(c.At)))
		steps[stepNode] = append(steps[stepNode], ms(r.At.Sub(b.At)))
		return
	}
}

// likeForLikeNote says what a Job scenario's ceiling is.
const likeForLikeNote = "ceiling: a bare client making each pod's writes (create, bind, status Succeeded, finalizer removal) for as many pods"

// bigJobScenario: one Job of many completions whose pods succeed at once.
func bigJobScenario(s Size) *Scenario {
	n, p := s.JobCompletions, s.JobParallelism
	targets := []Target{noSlower, LikeForLikeAtLeast(0.5), noMoreAPI}
	if n >= 5000 {
		targets = append(targets, RatioAtMost(1/1.5, "ratio <= 0.67, 1.5× faster (issue 8 aim)"))
	}
	return &Scenario{
		ID: "job", Estimate: 15 * time.Second,
		Metrics: []Metric{{Key: "complete", Name: fmt.Sprintf("Job of %d completions at parallelism %d: Complete", n, p),
			Unit: "s", VsCeiling: true, Targets: targets, Note: likeForLikeNote}},
		PerPod: func(Size) int { return n }, Breakdown: func(Size) int { return n },
		Ceiling: func(e *Env) CeilingSpec {
			return CeilingSpec{N: n, JobPodWrites: true, Pod: func(ns string, i int) *corev1.Pod {
				return podFromTemplate(ns, fmt.Sprintf("job-%d", i), succeedingTemplate(nil))
			}}
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			tr, err := trackJobs(ctx, e, map[string]func(*batchv1.Job) bool{"complete": jobComplete})
			if err != nil {
				return nil, err
			}
			defer tr.Stop()
			start := time.Now()
			if _, err := e.Client.BatchV1().Jobs(e.NS).Create(ctx, job("big", n, p), metav1.CreateOptions{}); err != nil {
				return nil, err
			}
			at, err := tr.Wait(ctx, "the Job Complete", func(v View[*batchv1.Job]) bool { return v.Count("complete") >= 1 })
			if err != nil {
				return nil, err
			}
			return map[string]float64{"complete": at.Sub(start).Seconds()}, nil
		},
	}
}

// manyJobsScenario: many small Jobs created at once.
func manyJobsScenario(s Size) *Scenario {
	n, k := s.ManyJobs, s.ManyJobsPods
	return &Scenario{
		ID: "jobs", Estimate: 12 * time.Second,
		Metrics: []Metric{{Key: "complete", Name: fmt.Sprintf("%d Jobs of %d completions (parallelism %d) at once: all Complete", n, k, k),
			Unit: "s", VsCeiling: true, Targets: []Target{noSlower, LikeForLikeAtLeast(0.5), noMoreAPI}, Note: likeForLikeNote}},
		PerPod: func(Size) int { return n * k }, Breakdown: func(Size) int { return n * k },
		Ceiling: func(e *Env) CeilingSpec {
			return CeilingSpec{N: n * k, JobPodWrites: true, Pod: func(ns string, i int) *corev1.Pod {
				return podFromTemplate(ns, fmt.Sprintf("job-%d", i), succeedingTemplate(nil))
			}}
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			tr, err := trackJobs(ctx, e, map[string]func(*batchv1.Job) bool{"complete": jobComplete})
			if err != nil {
				return nil, err
			}
			defer tr.Stop()
			start := time.Now()
			err = parallel(ctx, n, s.CreateWorkers, func(ctx context.Context, i int) error {
				_, err := e.Client.BatchV1().Jobs(e.NS).Create(ctx, job(fmt.Sprintf("small-%d", i), k, k), metav1.CreateOptions{})
				return err
			})
			if err != nil {
				return nil, err
			}
			at, err := tr.Wait(ctx, "all Complete", func(v View[*batchv1.Job]) bool { return v.Count("complete") >= n })
			if err != nil {
				return nil, err
			}
			return map[string]float64{"complete": at.Sub(start).Seconds()}, nil
		},
	}
}

type cronState struct {
	jobs     *Tracker[*batchv1.Job]
	boundary *atomic.Int64 // unix minutes of the measured schedule
}

// cronDeadline bounds the wait for the minute's Jobs: before the next
// minute comes due.
const cronDeadline = 45 * time.Second

// cronScenario: N CronJobs on */1 whose Jobs are created suspended; the
// lag of each one's Job after the minute (its arrival at the bench's
// watch), p50 and p99. The window closes once the controllers are quiet
// after the last Job: the CronJobs' status writes and the Job controller's
// Suspended conditions are part of the minute's work.
func cronScenario(s Size) *Scenario {
	n := s.CronJobs
	name := fmt.Sprintf("%d CronJobs on */1: Job created after the minute", n)
	p99Targets := []Target{noSlower}
	if n >= 1000 {
		p99Targets = append(p99Targets, QuartetAtMost(1000, "p99 < 1 s (issue 9)"), QuartetAtMost(2000, "p99 < 2 s (issue 18)"))
	}
	return &Scenario{
		ID: "cronjob", AtMinute: true, Estimate: 70 * time.Second,
		Metrics: []Metric{
			{Key: "p50", Name: name + ", p50", Unit: "ms", Targets: []Target{noSlower, noMoreAPI}},
			{Key: "p99", Name: name + ", p99", Unit: "ms", Targets: p99Targets},
			{Key: "all", Name: name + ", last", Unit: "ms", VsCeiling: true,
				Note: "ceiling: a bare client creating as many suspended Jobs"},
		},
		Ceiling: func(e *Env) CeilingSpec {
			return CeilingSpec{N: n, Job: func(ns string, i int) *batchv1.Job {
				j := job(fmt.Sprintf("tick-%d", i), 1, 1)
				suspend := true
				j.Spec.Suspend = &suspend
				return j
			}}
		},
		Setup: func(ctx context.Context, e *Env) error { return cronSetup(ctx, e, s) },
		Run:   func(ctx context.Context, e *Env) (map[string]float64, error) { return cronRun(ctx, e, n) },
		Teardown: func(ctx context.Context, e *Env) error {
			// Suspend, so they fire no more while later scenarios run.
			return parallel(ctx, n, s.CreateWorkers, func(ctx context.Context, i int) error {
				_, err := e.Client.BatchV1().CronJobs(e.NS).Patch(ctx, fmt.Sprintf("tick-%d", i), types.MergePatchType,
					[]byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{})
				return err
			})
		},
	}
}

// cronSetup creates the CronJobs and the tracker of their Jobs, and picks
// the minute the scenario measures.
func cronSetup(ctx context.Context, e *Env, s Size) error {
	n := s.CronJobs
	var minute atomic.Int64
	due := func(j *batchv1.Job) bool {
		m := minute.Load()
		return m != 0 && strings.HasSuffix(j.Name, fmt.Sprintf("-%d", m))
	}
	tr, err := trackJobs(context.WithoutCancel(ctx), e, map[string]func(*batchv1.Job) bool{"due": due})
	if err != nil {
		return err
	}
	e.SetData(&cronState{jobs: tr, boundary: &minute})
	err = parallel(ctx, n, s.CreateWorkers, func(ctx context.Context, i int) error {
		_, err := e.Client.BatchV1().CronJobs(e.NS).Create(ctx, cronJob(fmt.Sprintf("tick-%d", i), "*/1 * * * *"), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	// The first whole minute at least 5 s away: the controllers have
	// seen every CronJob, and no earlier minute is measured.
	now := time.Now()
	b := now.Truncate(time.Minute).Add(time.Minute)
	if b.Sub(now) < 5*time.Second {
		b = b.Add(time.Minute)
	}
	minute.Store(b.Unix() / 60)
	e.SetBoundary(b)
	return nil
}

// cronRun waits for every CronJob's Job of the minute and returns the lags.
func cronRun(ctx context.Context, e *Env, n int) (map[string]float64, error) {
	st := e.Data().(*cronState)
	defer st.jobs.Stop()
	b := e.Boundary()
	wctx, cancel := context.WithDeadline(ctx, b.Add(cronDeadline))
	defer cancel()
	_, waitErr := st.jobs.Wait(wctx, "every CronJob's Job", func(v View[*batchv1.Job]) bool { return v.Ever("due") >= n })
	var lags []float64
	for _, seen := range st.jobs.Firsts("due") {
		lags = append(lags, ms(seen.At.Sub(b)))
	}
	missing := n - len(lags)
	for range missing {
		lags = append(lags, ms(cronDeadline)) // censored at the deadline
	}
	out := map[string]float64{"p50": Percentile(lags, 50), "p99": Percentile(lags, 99), "all": Percentile(lags, 100)}
	if waitErr != nil {
		return out, fmt.Errorf("%d of %d CronJobs made no Job within %s of the minute (counted as %s)", missing, n, cronDeadline, cronDeadline)
	}
	return out, nil
}

// scaleScenario: many sim pods bound round-robin to the session's nodes
// (no scheduler, no controller), then the process's resident memory.
func scaleScenario(s Size) *Scenario {
	name := fmt.Sprintf("node agents: %d sim nodes + %d sim pods", s.ScaleNodes, s.ScalePods)
	rssTargets := []Target{}
	if s.ScaleNodes >= 1000 && s.ScalePods >= 10000 {
		rssTargets = append(rssTargets, QuartetAtMost(2048, "< 2 GB (issues 3 and 18)"))
	}
	note := "quartet mode only"
	return &Scenario{
		ID: "node-scale", QuartetOnly: true, Estimate: 10 * time.Second,
		Metrics: []Metric{
			{Key: "running", Name: name + ": all Running", Unit: "s", Note: note},
			{Key: "rss", Name: name + ": resident memory", Unit: "MB", Targets: rssTargets, Note: note},
			{Key: "peak", Name: name + ": peak resident memory", Unit: "MB", Note: note},
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			nodes, err := nodeNames(ctx, e)
			if err != nil {
				return nil, err
			}
			tr, err := trackPods(ctx, e, e.NS, map[string]func(*corev1.Pod) bool{"running": isRunning})
			if err != nil {
				return nil, err
			}
			defer tr.Stop()
			start := time.Now()
			err = parallel(ctx, s.ScalePods, s.CeilingWorkers, func(ctx context.Context, i int) error {
				p := podFromTemplate(e.NS, fmt.Sprintf("scale-%d", i), runningTemplate(nil))
				p.Spec.NodeName = nodes[i%len(nodes)]
				_, err := e.Client.CoreV1().Pods(e.NS).Create(ctx, p, metav1.CreateOptions{})
				return err
			})
			if err != nil {
				return nil, err
			}
			at, err := tr.Wait(ctx, "all Running", func(v View[*corev1.Pod]) bool { return v.Count("running") >= s.ScalePods })
			if err != nil {
				return nil, err
			}
			out := map[string]float64{"running": at.Sub(start).Seconds()}
			select { // let the process settle before reading its memory
			case <-time.After(s.Settle):
			case <-ctx.Done():
			}
			rss, peak, err := ProcessMemoryMB(e.Cluster.Pid())
			if err != nil {
				return out, err
			}
			out["rss"], out["peak"] = rss, peak
			e.SaveHeapProfile(ctx, "node-scale")
			return out, nil
		},
	}
}

// createdAndReady runs create and measures from its start until n pods of
// the namespace have existed ("created") and are Ready ("ready").
func createdAndReady(ctx context.Context, e *Env, n int, create func() error) (map[string]float64, error) {
	tr, err := trackPods(ctx, e, e.NS, map[string]func(*corev1.Pod) bool{"ready": isReady})
	if err != nil {
		return nil, err
	}
	defer tr.Stop()
	start := time.Now()
	if err := create(); err != nil {
		return nil, err
	}
	created, err := tr.Wait(ctx, "all created", func(v View[*corev1.Pod]) bool { return v.Ever(Exists) >= n })
	if err != nil {
		return nil, err
	}
	e.Logf("pods created by %s", Quartiles(tr.Firsts(Exists), start))
	out := map[string]float64{"created": created.Sub(start).Seconds()}
	ready, err := tr.Wait(ctx, "all Ready", func(v View[*corev1.Pod]) bool { return v.Count("ready") >= n })
	if err != nil {
		return out, err
	}
	out["ready"] = ready.Sub(start).Seconds()
	return out, nil
}

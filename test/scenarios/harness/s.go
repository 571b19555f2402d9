package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/test/cluster"
)

// Sim annotations understood by quartet's sim runtime (docs/nodes.md).
const (
	AnnotationSimExitCode   = "quartet.dev/sim-exit-code"
	AnnotationSimRunSeconds = "quartet.dev/sim-run-seconds"
	AnnotationSimReady      = "quartet.dev/sim-ready"
)

// S is one run of a scenario against one cluster, in its own namespace.
// Its methods fail the run (and stop it, like testing.T.Fatal) when
// something cannot be done; Errorf records a failure and goes on.
type S struct {
	Mode   Mode
	NS     string
	Ctx    context.Context
	Client kubernetes.Interface

	cluster  *cluster.Cluster
	replicas *replicaSet // standalone mode's `quartet controllers`
	rec      *recorder
	mu       sync.Mutex
	failures []string
	logs     []string
	skipped  string
	start    time.Time
	cancel   context.CancelFunc
}

// deleteNamespace deletes the run's namespace and waits (up to 2 minutes)
// until it is gone, so what the run left (pods holding host ports, daemon
// pods on every node) is gone before the next exclusive scenario starts.
// KEEP_SCENARIO_NAMESPACES=1 keeps them for debugging.
func (s *S) deleteNamespace() {
	if os.Getenv("KEEP_SCENARIO_NAMESPACES") != "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	if err := s.Client.CoreV1().Namespaces().Delete(ctx, s.NS, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		return
	}
	for ctx.Err() == nil {
		if _, err := s.Client.CoreV1().Namespaces().Get(ctx, s.NS, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Restart stops the cluster (SIGTERM, as a user's Ctrl-C), keeps it down for
// downtime, and starts it again on the same data dir and port. Only
// OwnCluster scenarios may call it.
func (s *S) Restart(downtime time.Duration) {
	if s.replicas != nil {
		// The leader cannot renew its Lease while the apiserver is down, so
		// it exits; the replica set starts it again, as a Deployment would.
		s.replicas.clusterRestarting()
	}
	if _, err := s.cluster.Stop(); err != nil {
		s.Fatalf("stopping the cluster: %v", err)
	}
	s.Logf("cluster stopped for %s", downtime)
	s.Sleep(downtime)
	if err := s.cluster.Restart(); err != nil {
		s.Fatalf("restarting the cluster: %v", err)
	}
	if err := s.rec.reconnect(); err != nil {
		s.Fatalf("watching again after the restart: %v", err)
	}
	s.Logf("cluster restarted")
}

// Fatalf records a failure and ends the run.
func (s *S) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	runtime.Goexit()
}

// Errorf records a failure; the run goes on.
func (s *S) Errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf("[%s %5.1fs] %s", s.Mode, time.Since(s.start).Seconds(), fmt.Sprintf(format, args...)))
}

// Logf adds a line to the run's log, shown when the scenario fails.
func (s *S) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, fmt.Sprintf("[%s %5.1fs] %s", s.Mode, time.Since(s.start).Seconds(), fmt.Sprintf(format, args...)))
}

// Expect records a failure when ok is false.
func (s *S) Expect(ok bool, format string, args ...any) {
	if !ok {
		s.Errorf(format, args...)
	}
}

// Note records a value in the trace under key, so every mode must agree on
// it (e.g. "pods created before Failed").
func (s *S) Note(key string, value any) {
	s.rec.note(key, fmt.Sprint(value))
}

// Apply applies YAML documents with `kubectl apply` in the scenario's
// namespace.
func (s *S) Apply(docs ...string) {
	s.Kubectl(strings.Join(docs, "\n---\n"), "apply", "-f", "-")
}

// ApplyErr is Apply returning kubectl's output and error instead of failing.
func (s *S) ApplyErr(docs ...string) (string, error) {
	return s.KubectlErr(strings.Join(docs, "\n---\n"), "apply", "-f", "-")
}

// Kubectl runs `quartet kubectl -n NS args...` with stdin and fails the run
// on error.
func (s *S) Kubectl(stdin string, args ...string) string {
	out, err := s.KubectlErr(stdin, args...)
	if err != nil {
		s.Fatalf("%v", err)
	}
	return out
}

// KubectlErr runs `quartet kubectl -n NS args...` and returns its output.
func (s *S) KubectlErr(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(s.Ctx, time.Minute)
	defer cancel()
	return s.cluster.Kubectl(ctx, stdin, append([]string{"-n", s.NS}, args...)...)
}

// Quartet runs a quartet subcommand against the cluster (e.g. node add).
func (s *S) Quartet(args ...string) string {
	ctx, cancel := context.WithTimeout(s.Ctx, 2*time.Minute)
	defer cancel()
	out, err := s.cluster.Quartet(ctx, args...)
	if err != nil {
		s.Fatalf("%v", err)
	}
	return out
}

// WaitFor polls cond every 100 ms until it holds, then records a trace
// checkpoint named what. On timeout it fails the run with what cond last
// reported.
func (s *S) WaitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	s.waitFor(what, timeout, cond)
	s.rec.checkpoint(s.Ctx, what)
}

// Eventually is WaitFor without a trace checkpoint, for waits whose moment
// is not part of the behaviour.
func (s *S) Eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	s.waitFor(what, timeout, cond)
}

func (s *S) waitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, seen := cond()
		if ok {
			s.Logf("saw %s", what)
			return
		}
		last = seen
		if time.Now().After(deadline) {
			s.Fatalf("timed out after %s waiting for %s; last saw:\n%s\nobjects:\n%s", timeout, what, indent(last), indent(s.Describe()))
		}
		select {
		case <-s.Ctx.Done():
			s.Fatalf("cancelled waiting for %s; last saw:\n%s", what, indent(last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Never fails the run if cond holds at any poll during d.
func (s *S) Never(what string, d time.Duration, cond func() (bool, string)) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, seen := cond(); ok {
			s.Fatalf("%s happened:\n%s", what, indent(seen))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sleep waits d (or until the run is cancelled).
func (s *S) Sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-s.Ctx.Done():
		s.Fatalf("cancelled")
	}
}

// Describe is `kubectl get` of the namespace's workload objects, pods and
// claims, for failure messages.
func (s *S) Describe() string {
	out, err := s.KubectlErr("", "get", "statefulsets,daemonsets,jobs,cronjobs,pods,pvc,controllerrevisions", "-o", "wide")
	if err != nil {
		return err.Error()
	}
	ev, _ := s.KubectlErr("", "get", "events", "--sort-by=.lastTimestamp")
	return out + "\n" + ev
}

// Pods lists the namespace's pods matching selector, sorted by name.
func (s *S) Pods(selector string) []corev1.Pod {
	l, err := s.Client.CoreV1().Pods(s.NS).List(s.Ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		s.Fatalf("listing pods: %v", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// Pod gets one pod; ok is false when it does not exist.
func (s *S) Pod(name string) (corev1.Pod, bool) {
	p, err := s.Client.CoreV1().Pods(s.NS).Get(s.Ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return corev1.Pod{}, false
	}
	if err != nil {
		s.Fatalf("getting pod %s: %v", name, err)
	}
	return *p, true
}

// PodSummary is "name phase ready" per pod, one per line, for messages.
func PodSummary(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "%s %s ready=%v node=%s deleting=%v\n", p.Name, p.Status.Phase, IsPodReady(&p), p.Spec.NodeName, p.DeletionTimestamp != nil)
	}
	return b.String()
}

// IsPodReady reports the pod's Ready condition.
func IsPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodsReady is a WaitFor condition: exactly n pods match selector, all
// Running and Ready and none deleting.
func (s *S) PodsReady(selector string, n int) func() (bool, string) {
	return func() (bool, string) {
		pods := s.Pods(selector)
		ready := 0
		for i := range pods {
			if pods[i].Status.Phase == corev1.PodRunning && IsPodReady(&pods[i]) && pods[i].DeletionTimestamp == nil {
				ready++
			}
		}
		return ready == n && len(pods) == n, PodSummary(pods)
	}
}

// StatefulSet gets a StatefulSet.
func (s *S) StatefulSet(name string) *appsv1.StatefulSet {
	o, err := s.Client.AppsV1().StatefulSets(s.NS).Get(s.Ctx, name, metav1.GetOptions{})
	if err != nil {
		s.Fatalf("getting statefulset %s: %v", name, err)
	}
	return o
}

// DaemonSet gets a DaemonSet.
func (s *S) DaemonSet(name string) *appsv1.DaemonSet {
	o, err := s.Client.AppsV1().DaemonSets(s.NS).Get(s.Ctx, name, metav1.GetOptions{})
	if err != nil {
		s.Fatalf("getting daemonset %s: %v", name, err)
	}
	return o
}

// Job gets a Job.
func (s *S) Job(name string) *batchv1.Job {
	o, err := s.Client.BatchV1().Jobs(s.NS).Get(s.Ctx, name, metav1.GetOptions{})
	if err != nil {
		s.Fatalf("getting job %s: %v", name, err)
	}
	return o
}

// Jobs lists the namespace's Jobs sorted by name.
func (s *S) Jobs() []batchv1.Job {
	l, err := s.Client.BatchV1().Jobs(s.NS).List(s.Ctx, metav1.ListOptions{})
	if err != nil {
		s.Fatalf("listing jobs: %v", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// CronJob gets a CronJob.
func (s *S) CronJob(name string) *batchv1.CronJob {
	o, err := s.Client.BatchV1().CronJobs(s.NS).Get(s.Ctx, name, metav1.GetOptions{})
	if err != nil {
		s.Fatalf("getting cronjob %s: %v", name, err)
	}
	return o
}

// JobHasCondition is a WaitFor condition: the Job has condition t True.
func (s *S) JobHasCondition(name string, t batchv1.JobConditionType) func() (bool, string) {
	return func() (bool, string) {
		j, err := s.Client.BatchV1().Jobs(s.NS).Get(s.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		b, _ := json.MarshalIndent(j.Status, "", "  ")
		return false, string(b)
	}
}

// PatchPodAnnotations merges annotations into a pod (nil values remove).
func (s *S) PatchPodAnnotations(pod string, ann map[string]*string) {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if _, err := s.Client.CoreV1().Pods(s.NS).Patch(s.Ctx, pod, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		s.Fatalf("annotating pod %s: %v", pod, err)
	}
}

// SetSimExitCode makes a running sim pod's containers exit with code.
func (s *S) SetSimExitCode(pod string, code int) {
	v := fmt.Sprint(code)
	s.PatchPodAnnotations(pod, map[string]*string{AnnotationSimExitCode: &v})
}

// SetSimReady makes a running sim pod's containers ready or unready.
func (s *S) SetSimReady(pod string, ready bool) {
	v := fmt.Sprint(ready)
	s.PatchPodAnnotations(pod, map[string]*string{AnnotationSimReady: &v})
}

// DeletePod deletes a pod as `kubectl delete pod` does.
func (s *S) DeletePod(name string) {
	if err := s.Client.CoreV1().Pods(s.NS).Delete(s.Ctx, name, metav1.DeleteOptions{}); err != nil {
		s.Fatalf("deleting pod %s: %v", name, err)
	}
}

// EvictPod evicts a pod through the eviction API, as kubectl drain does.
func (s *S) EvictPod(name string) error {
	return s.Client.PolicyV1().Evictions(s.NS).Evict(s.Ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.NS}})
}

// Scale runs `kubectl scale RESOURCE --replicas=n`.
func (s *S) Scale(resource string, n int) {
	s.Kubectl("", "scale", resource, fmt.Sprintf("--replicas=%d", n))
}

// Cordon marks a node unschedulable.
func (s *S) Cordon(node string) { s.Kubectl("", "cordon", node) }

// Uncordon marks a node schedulable.
func (s *S) Uncordon(node string) { s.Kubectl("", "uncordon", node) }

// Drain runs `kubectl drain NODE args...` and returns its output and error.
func (s *S) Drain(node string, args ...string) (string, error) {
	return s.KubectlErr("", append([]string{"drain", node, "--timeout=90s"}, args...)...)
}

// AddNode runs `quartet node add NAME args...` (e.g. --label k=v).
func (s *S) AddNode(name string, args ...string) {
	s.Quartet(append([]string{"node", "add", name}, args...)...)
}

// RemoveNode runs `quartet node remove NAME`.
func (s *S) RemoveNode(name string) { s.Quartet("node", "remove", name) }

// Nodes lists the cluster's nodes sorted by name.
func (s *S) Nodes() []corev1.Node {
	l, err := s.Client.CoreV1().Nodes().List(s.Ctx, metav1.ListOptions{})
	if err != nil {
		s.Fatalf("listing nodes: %v", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// Events lists the namespace's events (events.k8s.io/v1), oldest first.
func (s *S) Events() []eventsv1.Event {
	l, err := s.Client.EventsV1().Events(s.NS).List(s.Ctx, metav1.ListOptions{})
	if err != nil {
		s.Fatalf("listing events: %v", err)
	}
	sort.SliceStable(l.Items, func(i, j int) bool { return eventTime(&l.Items[i]).Before(eventTime(&l.Items[j])) })
	return l.Items
}

// HasEvent is a WaitFor condition: an event with reason about object
// (kind/name, name may be a prefix ending in "*") exists.
func (s *S) HasEvent(kind, name, reason string) func() (bool, string) {
	return func() (bool, string) {
		var seen []string
		for _, e := range s.Events() {
			seen = append(seen, fmt.Sprintf("%s %s/%s %s", e.Type, e.Regarding.Kind, e.Regarding.Name, e.Reason))
			if e.Reason == reason && e.Regarding.Kind == kind && nameMatches(e.Regarding.Name, name) {
				return true, ""
			}
		}
		return false, strings.Join(seen, "\n")
	}
}

func nameMatches(name, pattern string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return name == pattern
}

func eventTime(e *eventsv1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// Skip ends the run as skipped with a reason (e.g. a capability the machine
// lacks). A skipped run is never reported as passed.
func (s *S) Skip(reason string) {
	s.mu.Lock()
	s.skipped = reason
	s.mu.Unlock()
	runtime.Goexit()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    <nothing>"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

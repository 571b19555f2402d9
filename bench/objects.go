package bench

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Annotations of the sim runtime: containers that exit 0 at once.
const (
	simExitCode   = "quartet.dev/sim-exit-code"
	simRunSeconds = "quartet.dev/sim-run-seconds"
)

// podSpec is what every benchmark pod runs: one simulated container,
// no service-account token, no service links, a short grace period.
func podSpec(restart corev1.RestartPolicy) corev1.PodSpec {
	grace := int64(1)
	no := false
	return corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		RestartPolicy:                 restart,
		TerminationGracePeriodSeconds: &grace,
		AutomountServiceAccountToken:  &no,
		EnableServiceLinks:            &no,
	}
}

// runningTemplate is a pod template whose pods run until deleted.
func runningTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(corev1.RestartPolicyAlways)}
}

// succeedingTemplate is a pod template whose pods succeed at once.
func succeedingTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{simExitCode: "0", simRunSeconds: "0"}},
		Spec:       podSpec(corev1.RestartPolicyNever),
	}
}

func statefulSet(name string, replicas int, policy appsv1.PodManagementPolicyType) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	r := int32(replicas)
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &r,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			ServiceName:         name,
			PodManagementPolicy: policy,
			Template:            runningTemplate(labels),
		},
	}
}

func daemonSet(name string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: runningTemplate(labels),
		},
	}
}

func job(name string, completions, parallelism int) *batchv1.Job {
	c, p := int32(completions), int32(parallelism)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Completions: &c,
			Parallelism: &p,
			Template:    succeedingTemplate(nil),
		},
	}
}

// cronJob makes Jobs that are created suspended: no pods, so that the
// CronJob scenario times the CronJob controller, not the machine's room
// for starting a thousand pods in the same second (the Job scenarios time
// that).
func cronJob(name, schedule string) *batchv1.CronJob {
	one := int32(1)
	suspend := true
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Completions: &one,
				Suspend:     &suspend,
				Template:    succeedingTemplate(nil),
			}},
		},
	}
}

// pinnedPod is a pod that only node can run, placed the way a DaemonSet
// places its pods (required node affinity on the node's name).
func pinnedPod(ns, name, node string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Spec: podSpec(corev1.RestartPolicyAlways)}
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
	return p
}

func podFromTemplate(ns, name string, t corev1.PodTemplateSpec) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: t.Labels, Annotations: t.Annotations}, Spec: t.Spec}
}

// Pod predicates for trackers.
func isRunning(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
}

func isReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// CeilingSpec is what the bare client creates: N pods, or N Jobs.
type CeilingSpec struct {
	N   int
	Pod func(ns string, i int) *corev1.Pod
	Job func(ns string, i int) *batchv1.Job
	// JobPodWrites makes the ceiling like-for-like for Jobs: the bare
	// client makes every write a Job's pod needs, one after the other per
	// pod, many pods at once — create it (with the Job controller's
	// finalizer), bind it, set its status Succeeded, remove the finalizer —
	// and the ceiling ends when the watch shows the last pod done.
	JobPodWrites bool
}

// Ceiling pods are bound to a node that does not exist, so that no node
// agent runs them, and name a scheduler that does not exist, so that the
// scheduler leaves them to the bare client.
const (
	ceilingNode      = "quartet-bench-ceiling-node"
	ceilingScheduler = "quartet-bench-ceiling"
	jobFinalizer     = "batch.kubernetes.io/job-tracking"
)

// jobPodDone: the pod succeeded and nothing holds it any more.
func jobPodDone(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded && len(p.Finalizers) == 0
}

// jobPodWrites makes a Job pod's writes for pod, in order.
func jobPodWrites(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	pod.Finalizers = append(pod.Finalizers, jobFinalizer)
	pod.Spec.SchedulerName = ceilingScheduler
	pods := client.CoreV1().Pods(pod.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return err
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		Target: corev1.ObjectReference{Kind: "Node", Name: ceilingNode}}
	if err := pods.Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("binding: %w", err)
	}
	if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"status":{"phase":"Succeeded"}}`),
		metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	patch := fmt.Sprintf(`{"metadata":{"$deleteFromPrimitiveList/finalizers":[%q]}}`, jobFinalizer)
	if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	return nil
}

// Ceiling times a bare client creating the objects in a namespace of their
// own in the same cluster, right after the scenario, with the in-process
// components' client limits and CeilingWorkers concurrent requests: from
// the first request to the watch seeing the last object, as the
// scenario's creations are timed. The objects are left in place: the
// session's cluster either stops next or has room for them.
func Ceiling(ctx context.Context, e *Env, spec CeilingSpec) (float64, error) {
	ns := e.NS + "-ceiling"
	if err := EnsureNamespace(ctx, e.Client, ns); err != nil {
		return 0, err
	}
	var wait func(context.Context) (time.Time, error)
	var create func(context.Context, int) error
	what := "pods"
	if spec.Job != nil {
		what = "Jobs"
		tr, err := Track[*batchv1.Job](ctx, e.Client.BatchV1().RESTClient(), "jobs", ns, nil)
		if err != nil {
			return 0, err
		}
		defer tr.Stop()
		wait = func(ctx context.Context) (time.Time, error) {
			return tr.Wait(ctx, "the ceiling's Jobs", func(v View[*batchv1.Job]) bool { return v.Ever(Exists) >= spec.N })
		}
		create = func(ctx context.Context, i int) error {
			_, err := e.CeilingClient.BatchV1().Jobs(ns).Create(ctx, spec.Job(ns, i), metav1.CreateOptions{})
			return err
		}
	} else {
		tr, err := Track[*corev1.Pod](ctx, e.Client.CoreV1().RESTClient(), "pods", ns, map[string]func(*corev1.Pod) bool{"done": jobPodDone})
		if err != nil {
			return 0, err
		}
		defer tr.Stop()
		wait = func(ctx context.Context) (time.Time, error) {
			return tr.Wait(ctx, "the ceiling's pods", func(v View[*corev1.Pod]) bool { return v.Ever(Exists) >= spec.N })
		}
		create = func(ctx context.Context, i int) error {
			_, err := e.CeilingClient.CoreV1().Pods(ns).Create(ctx, spec.Pod(ns, i), metav1.CreateOptions{})
			return err
		}
		if spec.JobPodWrites {
			what = "Job pods (create, bind, status Succeeded, finalizer removed)"
			wait = func(ctx context.Context) (time.Time, error) {
				return tr.Wait(ctx, "the ceiling's pods done", func(v View[*corev1.Pod]) bool { return v.Ever("done") >= spec.N })
			}
			create = func(ctx context.Context, i int) error { return jobPodWrites(ctx, e.CeilingClient, spec.Pod(ns, i)) }
		}
	}
	cpu0 := selfCPU()
	start := time.Now()
	if err := parallel(ctx, spec.N, e.Size.CeilingWorkers, create); err != nil {
		return 0, err
	}
	at, err := wait(ctx)
	if err != nil {
		return 0, err
	}
	d := at.Sub(start).Seconds()
	e.Logf("ceiling: a bare client created %d %s in %.2fs (%.0f/s; %d concurrent requests, %.1f CPU seconds in the bench process)",
		spec.N, what, d, float64(spec.N)/d, e.Size.CeilingWorkers, selfCPU()-cpu0)
	return d, nil
}

// selfCPU is the CPU time this process has used, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

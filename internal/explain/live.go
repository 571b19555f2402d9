package explain

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"quartet.dev/quartet/internal/controllers/job"
	"quartet.dev/quartet/internal/prose"
)

// logger is given to the Kubernetes helpers that want one; they log nothing
// explain needs.
var logger = logr.Discard()

// Live explains the objects of namespace ("" with all for every namespace)
// read from a cluster, with one line on why each stuck object is stuck.
func Live(ctx context.Context, client kubernetes.Interface, namespace string, opts Options) (Report, error) {
	w := newWorld(nil, opts)
	w.live = true
	if err := listWorkloads(ctx, client, namespace, w); err != nil {
		return Report{}, err
	}
	if err := listCore(ctx, client, namespace, w); err != nil {
		return Report{}, err
	}
	return explainAll(w), nil
}

// collect adds every item of a list to the objects explained.
func collect[T any, PT interface {
	*T
	metav1.Object
}](w *world, kind, apiVersion string, items []T) {
	for i := range items {
		p := PT(&items[i])
		w.objects = append(w.objects, fromTyped(kind, apiVersion, p.GetNamespace(), p.GetName(), p))
	}
}

// listed wraps a list's error with what was being listed.
func listed(what string, err error) error { return fmt.Errorf("listing %s: %w", what, err) }

// listWorkloads reads the controllers' objects.
func listWorkloads(ctx context.Context, client kubernetes.Interface, namespace string, w *world) error {
	list := metav1.ListOptions{}
	sets, err := client.AppsV1().StatefulSets(namespace).List(ctx, list)
	if err != nil {
		return listed("StatefulSets", err)
	}
	collect(w, "StatefulSet", "apps/v1", sets.Items)
	daemons, err := client.AppsV1().DaemonSets(namespace).List(ctx, list)
	if err != nil {
		return listed("DaemonSets", err)
	}
	collect(w, "DaemonSet", "apps/v1", daemons.Items)
	deployments, err := client.AppsV1().Deployments(namespace).List(ctx, list)
	if err != nil {
		return listed("Deployments", err)
	}
	collect(w, "Deployment", "apps/v1", deployments.Items)
	jobs, err := client.BatchV1().Jobs(namespace).List(ctx, list)
	if err != nil {
		return listed("Jobs", err)
	}
	collect(w, "Job", "batch/v1", jobs.Items)
	cronJobs, err := client.BatchV1().CronJobs(namespace).List(ctx, list)
	if err != nil {
		return listed("CronJobs", err)
	}
	collect(w, "CronJob", "batch/v1", cronJobs.Items)
	return nil
}

// listCore reads what the workloads' readings and stuck lines look at:
// pods (those without a controller are explained too), Services, claims,
// nodes and StorageClasses.
func listCore(ctx context.Context, client kubernetes.Interface, namespace string, w *world) error {
	list := metav1.ListOptions{}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, list)
	if err != nil {
		return listed("Pods", err)
	}
	w.pods = pods.Items
	for i := range pods.Items {
		if p := &pods.Items[i]; metav1.GetControllerOf(p) == nil {
			w.objects = append(w.objects, fromTyped("Pod", "v1", p.Namespace, p.Name, p))
		}
	}
	services, err := client.CoreV1().Services(namespace).List(ctx, list)
	if err != nil {
		return listed("Services", err)
	}
	collect(w, "Service", "v1", services.Items)
	claims, err := client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, list)
	if err != nil {
		return listed("PersistentVolumeClaims", err)
	}
	collect(w, "PersistentVolumeClaim", "v1", claims.Items)
	nodes, err := client.CoreV1().Nodes().List(ctx, list)
	if err != nil {
		return listed("Nodes", err)
	}
	w.nodes = nodes.Items
	classes, err := client.StorageV1().StorageClasses().List(ctx, list)
	if err != nil {
		return listed("StorageClasses", err)
	}
	w.storageClasses = map[string]*storagev1.StorageClass{}
	for i := range classes.Items {
		w.storageClasses[classes.Items[i].Name] = &classes.Items[i]
	}
	return nil
}

// stuck says in one line why a live object makes no progress, or "".
func stuck(w *world, o *object) string {
	switch v := o.typed.(type) {
	case *appsv1.StatefulSet:
		return stuckStatefulSet(w, v)
	case *appsv1.DaemonSet:
		return stuckDaemonSet(w, v)
	case *batchv1.Job:
		return stuckJob(w, v)
	case *batchv1.CronJob:
		return stuckCronJob(w, v)
	case *corev1.PersistentVolumeClaim:
		return stuckClaim(w, v)
	}
	return ""
}

// podsOf returns the pods a controller with uid owns.
func podsOf(w *world, namespace string, uid types.UID) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range w.pods {
		p := &w.pods[i]
		if ref := metav1.GetControllerOf(p); p.Namespace == namespace && ref != nil && ref.UID == uid {
			out = append(out, p)
		}
	}
	return out
}

func stuckStatefulSet(w *world, set *appsv1.StatefulSet) string {
	replicas := replicasOf(set.Spec.Replicas)
	if set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement || set.Status.ReadyReplicas >= replicas {
		return ""
	}
	start := int32(0)
	if set.Spec.Ordinals != nil {
		start = set.Spec.Ordinals.Start
	}
	byName := map[string]*corev1.Pod{}
	for _, p := range podsOf(w, set.Namespace, set.UID) {
		byName[p.Name] = p
	}
	for ord := start; ord < start+replicas; ord++ {
		name := fmt.Sprintf("%s-%d", set.Name, ord)
		p, ok := byName[name]
		if !ok {
			return "" // being created: the ones before it are Ready
		}
		if isReady(p) {
			continue
		}
		var waiting []string
		if ord+1 < start+replicas {
			if _, next := byName[fmt.Sprintf("%s-%d", set.Name, ord+1)]; !next {
				waiting = append(waiting, "creating "+ordinalRange(set.Name, ord+1, start+replicas-ord-1))
			}
		}
		if set.Status.CurrentRevision != set.Status.UpdateRevision {
			waiting = append(waiting, "the rolling update")
		}
		if len(waiting) == 0 {
			waiting = append(waiting, "the set")
		}
		return fmt.Sprintf("OrderedReady: %s waits for %s, which is %s", strings.Join(waiting, " and "), name, podState(w, p))
	}
	return ""
}

func stuckDaemonSet(w *world, ds *appsv1.DaemonSet) string {
	if len(w.nodes) > 0 && ds.Status.DesiredNumberScheduled == 0 {
		return "no node can take its pod: " + eligibleNodes(w, &ds.Spec.Template.Spec)
	}
	for _, p := range podsOf(w, ds.Namespace, ds.UID) {
		if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("pod %s cannot be placed on its node: %s", p.Name, c.Message)
		}
	}
	for _, p := range podsOf(w, ds.Namespace, ds.UID) {
		if !isReady(p) && p.DeletionTimestamp == nil && waitingReason(p) != "" {
			return fmt.Sprintf("pod %s on %s is %s", p.Name, p.Spec.NodeName, podState(w, p))
		}
	}
	return ""
}

func stuckJob(w *world, j *batchv1.Job) string {
	if finished(j) || (j.Spec.Suspend != nil && *j.Spec.Suspend) {
		return ""
	}
	pods := podsOf(w, j.Namespace, j.UID)
	for _, p := range pods {
		if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && p.DeletionTimestamp == nil {
			return fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, c.Message)
		}
	}
	limit := int32(6)
	if j.Spec.BackoffLimit != nil {
		limit = *j.Spec.BackoffLimit
	}
	// OnFailure: the kubelet restarts the container in place, with its own
	// back-off; the restarts count toward backoffLimit.
	for _, p := range pods {
		if r := waitingReason(p); r == "CrashLoopBackOff" {
			return fmt.Sprintf("pod %s is in CrashLoopBackOff: %d restarts, the Job fails past backoffLimit %d", p.Name, restarts(p), limit)
		}
	}
	var (
		failures    int32
		lastFailure time.Time
		running     int
	)
	for _, p := range pods {
		switch p.Status.Phase {
		case corev1.PodFailed:
			failures++
			if t := finishedAt(p); t.After(lastFailure) {
				lastFailure = t
			}
		case corev1.PodSucceeded:
		default:
			if p.DeletionTimestamp == nil {
				running++
			}
		}
	}
	if running > 0 || failures == 0 || lastFailure.IsZero() {
		return ""
	}
	until := lastFailure.Add(job.RetryDelay(j, failures))
	if !until.After(w.now) {
		return ""
	}
	return fmt.Sprintf("in back-off after %d failed pod%s: the next pod starts at %s (in %s); %d of %d retries left",
		failures, pluralS(failures != 1), until.In(w.local).Format("15:04:05 MST"), prose.Duration(until.Sub(w.now).Round(time.Second)), max(limit-failures+1, 0), limit)
}

func stuckCronJob(w *world, cj *batchv1.CronJob) string {
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || len(cj.Status.Active) == 0 || (cj.Spec.Suspend != nil && *cj.Spec.Suspend) {
		return ""
	}
	c := cronOf(w, cj)
	if c.problem != nil {
		return ""
	}
	next := c.sched.Next(w.now)
	if next.IsZero() {
		return ""
	}
	active := cj.Status.Active[0].Name
	for _, o := range w.objects {
		j, ok := o.typed.(*batchv1.Job)
		if !ok || j.Namespace != cj.Namespace || j.Name != active {
			continue
		}
		if d := j.Spec.ActiveDeadlineSeconds; d != nil && j.Status.StartTime != nil &&
			j.Status.StartTime.Add(time.Duration(*d)*time.Second).Before(next) {
			return "" // it ends by its deadline before the next run
		}
		since := ""
		if j.Status.StartTime != nil {
			since = fmt.Sprintf(", running for %s,", prose.Duration(w.now.Sub(j.Status.StartTime.Time).Round(time.Second)))
		}
		return fmt.Sprintf("Forbid: the run at %s is skipped unless Job %s%s finishes first", next.In(c.sched.Location).Format("15:04 MST"), active, since)
	}
	return fmt.Sprintf("Forbid: the run at %s is skipped unless Job %s finishes first", next.In(c.sched.Location).Format("15:04 MST"), active)
}

func stuckClaim(w *world, c *corev1.PersistentVolumeClaim) string {
	if c.Status.Phase != corev1.ClaimPending {
		return ""
	}
	className := ""
	if c.Spec.StorageClassName != nil {
		className = *c.Spec.StorageClassName
	} else {
		for name, sc := range w.storageClasses {
			if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
				className = name
			}
		}
	}
	sc := w.storageClasses[className]
	if sc == nil {
		if className == "" {
			return "Pending: no storageClassName and no default StorageClass, so nothing provisions a volume for it"
		}
		return fmt.Sprintf("Pending: StorageClass %s does not exist", className)
	}
	if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return ""
	}
	var users []*corev1.Pod
	for i := range w.pods {
		p := &w.pods[i]
		if p.Namespace == c.Namespace && slices.Contains(claimVolumes(&p.Spec), c.Name) {
			users = append(users, p)
		}
	}
	if len(users) == 0 {
		return fmt.Sprintf("Pending on WaitForFirstConsumer (StorageClass %s): no pod uses it, and a volume is made only once one is scheduled", className)
	}
	for _, p := range users {
		if p.Spec.NodeName != "" {
			return "" // scheduled: the provisioner is at work
		}
	}
	p := users[0]
	msg := "not scheduled yet"
	if cond := podCondition(p, corev1.PodScheduled); cond != nil && cond.Message != "" {
		msg = "unschedulable: " + cond.Message
	}
	return fmt.Sprintf("Pending on WaitForFirstConsumer (StorageClass %s): its pod %s is %s", className, p.Name, msg)
}

// eligibleNodes says how many nodes a daemon pod can land on, as the
// DaemonSet controller and scheduler decide: the required node affinity
// (nodeSelector included) and the NoSchedule and NoExecute taints, with the
// tolerations the DaemonSet controller adds to every daemon pod.
func eligibleNodes(w *world, spec *corev1.PodSpec) string {
	if len(w.nodes) == 0 {
		return "the cluster has no nodes"
	}
	affinity := nodeaffinity.GetRequiredNodeAffinity(&corev1.Pod{Spec: *spec})
	tolerations := append(slices.Clone(spec.Tolerations), daemonTolerations(spec)...)
	var ok int
	var reasons []string
	for i := range w.nodes {
		n := &w.nodes[i]
		if match, err := affinity.Match(n); err != nil || !match {
			reasons = append(reasons, n.Name+" does not match its node selector or affinity")
			continue
		}
		if t, untolerated := untoleratedTaint(n.Spec.Taints, tolerations); untolerated {
			reasons = append(reasons, fmt.Sprintf("%s has taint %s=%s:%s", n.Name, t.Key, t.Value, t.Effect))
			continue
		}
		ok++
	}
	s := fmt.Sprintf("%d of %d node%s", ok, len(w.nodes), pluralS(len(w.nodes) != 1))
	if ok == 0 {
		const show = 3
		if len(reasons) > show {
			reasons = append(reasons[:show], fmt.Sprintf("and %d more", len(reasons)-show))
		}
		s += ": " + strings.Join(reasons, "; ")
	}
	return s
}

func untoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration) (corev1.Taint, bool) {
	for _, t := range taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		tolerated := false
		for i := range tolerations {
			if tolerations[i].ToleratesTaint(logger, &t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return t, true
		}
	}
	return corev1.Taint{}, false
}

// daemonTolerations are the tolerations the DaemonSet controller adds to
// every daemon pod.
func daemonTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	exists := func(key string, effect corev1.TaintEffect) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
	}
	ts := []corev1.Toleration{
		exists(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute),
		exists(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute),
		exists(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule),
		exists(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule),
		exists(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule),
		exists(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule),
	}
	if spec.HostNetwork {
		ts = append(ts, exists(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule))
	}
	return ts
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func isReady(p *corev1.Pod) bool {
	c := podCondition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func finished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func waitingReason(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			return cs.State.Waiting.Reason
		}
	}
	return ""
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// finishedAt is when a failed pod's last container ended, or when it was
// last seen changing.
func finishedAt(p *corev1.Pod) time.Time {
	var t time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if t.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.LastTransitionTime.After(t) {
				t = c.LastTransitionTime.Time
			}
		}
	}
	return t
}

// podState says where a pod is: "Pending, unschedulable: ...", "Running,
// not Ready for 2m", "CrashLoopBackOff (5 restarts)".
func podState(w *world, p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
		return "Pending, unschedulable: " + c.Message
	}
	if r := waitingReason(p); r != "" {
		return fmt.Sprintf("%s (%d restarts)", r, restarts(p))
	}
	if p.Status.Phase == corev1.PodRunning {
		s := "Running but not Ready"
		if c := podCondition(p, corev1.PodReady); c != nil && !c.LastTransitionTime.IsZero() {
			s += " for " + prose.Duration(w.now.Sub(c.LastTransitionTime.Time).Round(time.Second))
		}
		return s
	}
	return string(p.Status.Phase)
}

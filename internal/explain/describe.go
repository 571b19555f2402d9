package explain

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"quartet.dev/quartet/internal/prose"
)

// The chapter's decision tree, as the readings explain prints: "Can the Pods
// be interchangeable? Must exactly one run per node? Should it run once and
// finish? Periodically?"
const (
	readingStateful   = "not interchangeable"
	readingPerNode    = "interchangeable, one per node"
	readingOnce       = "interchangeable, not per node, runs once to completion"
	readingPeriodic   = "interchangeable, not per node, runs to completion periodically"
	readingLongLived  = "interchangeable, not per node, keeps running"
	readingBarePod    = "a single pod, no controller"
	readingNotWorkLd  = "not a workload"
	readingUnknown    = "not a kind quartet explain reads"
	readingUnreadable = "not readable"
)

// describe returns the object's reading in the decision tree, the
// controller the tree lands on, and the concrete identity it will have.
func describe(w *world, o *object) (reading, controller, identity string) {
	switch v := o.typed.(type) {
	case *appsv1.StatefulSet:
		return readingStateful, "StatefulSet", describeStatefulSet(o, v)
	case *appsv1.DaemonSet:
		return readingPerNode, "DaemonSet", describeDaemonSet(w, v)
	case *batchv1.Job:
		return readingOnce, "Job", describeJob(&v.Spec, v.Annotations)
	case *batchv1.CronJob:
		return readingPeriodic, "CronJob", describeCronJob(w, v)
	case *appsv1.Deployment:
		return readingLongLived, "Deployment", describeReplicated(v.Name, v.Spec.Replicas, &v.Spec.Template.Spec, "<hash>-<id>") + deploymentStrategy(v)
	case *appsv1.ReplicaSet:
		return readingLongLived, "ReplicaSet", describeReplicated(v.Name, v.Spec.Replicas, &v.Spec.Template.Spec, "<id>") + ownedBy(v.OwnerReferences)
	case *corev1.Pod:
		return describePod(v)
	case *corev1.Service:
		return readingNotWorkLd, "", describeService(o, v)
	case *corev1.PersistentVolumeClaim:
		return readingNotWorkLd, "", describeClaim(v)
	}
	switch {
	case o.badVersion:
		return readingUnreadable, "", fmt.Sprintf("apiVersion %s is not served by Kubernetes v1.37 (%s is)", o.src.APIVersion, kinds[o.src.Kind].apiVersion)
	case o.decodeErr != nil:
		return readingUnreadable, "", "does not decode (see the error below)"
	}
	if what, ok := otherKinds[o.src.Kind]; ok {
		return readingNotWorkLd, "", what
	}
	return readingUnknown, "", fmt.Sprintf("%s (%s): no intent read from it", o.src.Kind, o.src.APIVersion)
}

// otherKinds are common kinds that are not workloads, with what they are.
var otherKinds = map[string]string{
	"Namespace":                "a namespace",
	"ConfigMap":                "configuration data for pods",
	"Secret":                   "secret data for pods",
	"ServiceAccount":           "an identity for pods",
	"Role":                     "permissions in a namespace",
	"ClusterRole":              "cluster-wide permissions",
	"RoleBinding":              "grants a Role or ClusterRole in a namespace",
	"ClusterRoleBinding":       "grants a ClusterRole cluster-wide",
	"PersistentVolume":         "a volume for a claim to bind",
	"StorageClass":             "how claims get volumes",
	"Ingress":                  "HTTP routes to Services",
	"NetworkPolicy":            "which traffic pods accept",
	"PodDisruptionBudget":      "how many pods voluntary disruptions may take down",
	"HorizontalPodAutoscaler":  "scales a workload's replicas",
	"LimitRange":               "default and maximum resources in a namespace",
	"ResourceQuota":            "resource limits of a namespace",
	"PriorityClass":            "a pod priority",
	"CustomResourceDefinition": "a new kind",
	"Node":                     "a node",
	"Endpoints":                "a Service's addresses",
	"EndpointSlice":            "part of a Service's addresses",
	"ControllerRevision":       "a revision of a StatefulSet's or DaemonSet's template",
	"Event":                    "an event",
	"Lease":                    "a lease (leader election, node heartbeats)",
}

func describeStatefulSet(o *object, set *appsv1.StatefulSet) string {
	replicas := replicasOf(set.Spec.Replicas)
	start := int32(0)
	if set.Spec.Ordinals != nil {
		start = set.Spec.Ordinals.Start
	}
	var parts []string
	switch {
	case replicas < 0:
		return fmt.Sprintf("replicas %d: the API server refuses a negative count", replicas)
	case replicas == 0:
		parts = append(parts, "no pods (replicas 0)")
	default:
		order := "created in order, each Ready before the next (OrderedReady)"
		if set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement {
			order = "created and deleted all at once (Parallel)"
		}
		parts = append(parts, fmt.Sprintf("pods %s, %s", ordinalRange(set.Name, start, replicas), order))
	}
	for _, t := range set.Spec.VolumeClaimTemplates {
		parts = append(parts, fmt.Sprintf("claims %s (%s each)", shortRange(t.Name+"-"+set.Name, start, max(replicas, 1)), claimShape(&t.Spec)))
	}
	if set.Spec.ServiceName != "" && replicas > 0 {
		parts = append(parts, fmt.Sprintf("DNS names %s.%s.%s.svc.cluster.local", braceRange(set.Name, start, replicas), set.Spec.ServiceName, o.namespace()))
	}
	parts = append(parts, updateOf(set))
	return strings.Join(parts, "; ")
}

// ordinalRange is "web-0", "web-0, web-1" or "web-0..web-2".
func ordinalRange(prefix string, start, n int32) string {
	switch n {
	case 1:
		return fmt.Sprintf("%s-%d", prefix, start)
	case 2:
		return fmt.Sprintf("%s-%d, %s-%d", prefix, start, prefix, start+1)
	}
	return fmt.Sprintf("%s-%d..%s-%d", prefix, start, prefix, start+n-1)
}

// shortRange is "data-web-0", "data-web-0, data-web-1" or "data-web-0..2".
func shortRange(prefix string, start, n int32) string {
	if n > 2 {
		return fmt.Sprintf("%s-%d..%d", prefix, start, start+n-1)
	}
	return ordinalRange(prefix, start, n)
}

// braceRange is "web-0", "web-{0,1}" or "web-{0..2}".
func braceRange(prefix string, start, n int32) string {
	switch n {
	case 1:
		return fmt.Sprintf("%s-%d", prefix, start)
	case 2:
		return fmt.Sprintf("%s-{%d,%d}", prefix, start, start+1)
	}
	return fmt.Sprintf("%s-{%d..%d}", prefix, start, start+n-1)
}

func updateOf(set *appsv1.StatefulSet) string {
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return "updated only when a pod is deleted (OnDelete)"
	}
	s := "rolling update from the highest ordinal"
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		if ru.Partition != nil && *ru.Partition > 0 {
			s += fmt.Sprintf(", the first %d pods kept back (partition %d)", *ru.Partition, *ru.Partition)
		}
		if ru.MaxUnavailable != nil && ru.MaxUnavailable.String() != "1" {
			s += fmt.Sprintf(", %s at a time", ru.MaxUnavailable.String())
		}
	}
	return s
}

func claimShape(spec *corev1.PersistentVolumeClaimSpec) string {
	var parts []string
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; ok {
		parts = append(parts, q.String())
	}
	for _, m := range spec.AccessModes {
		parts = append(parts, string(m))
	}
	if spec.StorageClassName != nil {
		parts = append(parts, "class "+*spec.StorageClassName)
	}
	if len(parts) == 0 {
		return "no size"
	}
	return strings.Join(parts, " ")
}

func describeDaemonSet(w *world, ds *appsv1.DaemonSet) string {
	spec := &ds.Spec.Template.Spec
	where := "a pod on every node"
	if sel := labelList(spec.NodeSelector); sel != "" {
		where = "a pod on every node labelled " + sel
	}
	if hasRequiredAffinity(spec) {
		where += " that matches its node affinity"
	}
	var parts []string
	switch t := tolerationList(spec.Tolerations); {
	case toleratesEverything(spec.Tolerations):
		where += ", tolerating every taint"
	case t != "":
		where += ", tolerating " + t
	default:
		where += " without a NoSchedule taint"
	}
	if w.live {
		where += fmt.Sprintf(" (%s)", eligibleNodes(w, spec))
	}
	parts = append(parts, where)
	if spec.HostNetwork {
		parts = append(parts, "host network")
	}
	if ports := hostPorts(spec); ports != "" {
		parts = append(parts, "hostPort "+ports)
	}
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		parts = append(parts, "updated only when a pod is deleted (OnDelete)")
	} else {
		unavailable, surge := "1", "0"
		if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
			if ru.MaxUnavailable != nil {
				unavailable = ru.MaxUnavailable.String()
			}
			if ru.MaxSurge != nil {
				surge = ru.MaxSurge.String()
			}
		}
		if surge != "0" {
			parts = append(parts, fmt.Sprintf("rolling update starting the new pod first (maxSurge %s)", surge))
		} else {
			parts = append(parts, fmt.Sprintf("rolling update, %s node%s at a time", unavailable, pluralS(unavailable != "1")))
		}
	}
	return strings.Join(parts, "; ")
}

func hasRequiredAffinity(spec *corev1.PodSpec) bool {
	a := spec.Affinity
	return a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
}

func labelList(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func tolerationList(ts []corev1.Toleration) string {
	var parts []string
	for _, t := range ts {
		s := t.Key
		if t.Operator == corev1.TolerationOpEqual || (t.Operator == "" && t.Value != "") {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// toleratesEverything: a toleration with operator Exists and no key
// tolerates every taint (of its effect, or all effects).
func toleratesEverything(ts []corev1.Toleration) bool {
	for _, t := range ts {
		if t.Key == "" && t.Operator == corev1.TolerationOpExists && (t.Effect == "" || t.Effect == corev1.TaintEffectNoSchedule) {
			return true
		}
	}
	return false
}

func hostPorts(spec *corev1.PodSpec) string {
	var ports []string
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				ports = append(ports, fmt.Sprint(p.HostPort))
			}
		}
	}
	return strings.Join(ports, ", ")
}

// describeJob says how a Job (or a CronJob's Job template) runs.
func describeJob(spec *batchv1.JobSpec, annotations map[string]string) string {
	var parts []string
	parallelism := int32(1)
	if spec.Parallelism != nil {
		parallelism = *spec.Parallelism
	}
	switch {
	case spec.Suspend != nil && *spec.Suspend:
		parts = append(parts, "suspended: no pods until spec.suspend is false")
	case parallelism == 0:
		parts = append(parts, "parallelism 0: no pods run")
	}
	switch {
	case spec.Completions == nil && parallelism > 1:
		parts = append(parts, fmt.Sprintf("a work queue: %d pods at a time, done when one succeeds and the others finish", parallelism))
	default:
		completions := int32(1)
		if spec.Completions != nil {
			completions = *spec.Completions
		}
		s := fmt.Sprintf("%d completion%s, %d at a time", completions, pluralS(completions != 1), min(parallelism, max(completions, 1)))
		if spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion && completions > 0 {
			s += fmt.Sprintf(", indexes 0..%d (env JOB_COMPLETION_INDEX)", completions-1)
		}
		parts = append(parts, s)
	}
	parts = append(parts, retriesOf(spec, annotations))
	if d := spec.ActiveDeadlineSeconds; d != nil {
		parts = append(parts, "stopped after "+prose.Duration(time.Duration(*d)*time.Second))
	}
	if ttl := spec.TTLSecondsAfterFinished; ttl != nil {
		parts = append(parts, "deleted "+prose.Duration(time.Duration(*ttl)*time.Second)+" after it finishes")
	}
	return strings.Join(parts, ", ")
}

func retriesOf(spec *batchv1.JobSpec, annotations map[string]string) string {
	how := ""
	switch spec.Template.Spec.RestartPolicy {
	case corev1.RestartPolicyOnFailure:
		how = " (OnFailure: a failed container restarts in its pod)"
	case corev1.RestartPolicyNever:
		how = " (Never: each retry is a new pod)"
	}
	if spec.BackoffLimitPerIndex != nil {
		return fmt.Sprintf("up to %d retries per index%s", *spec.BackoffLimitPerIndex, how)
	}
	limit := "up to 6 retries by default"
	if spec.BackoffLimit != nil {
		switch *spec.BackoffLimit {
		case 0:
			limit = "no retries"
		case 1:
			limit = "up to 1 retry"
		default:
			limit = fmt.Sprintf("up to %d retries", *spec.BackoffLimit)
		}
	}
	if _, ok := annotations["quartet.dev/backoff-base"]; ok {
		how += ", retry delay set by quartet.dev/backoff-base"
	}
	return limit + how
}

func describeCronJob(w *world, cj *batchv1.CronJob) string {
	var parts []string
	when, _ := scheduleOf(w, cj)
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		when = "suspended (" + when + ")"
	}
	parts = append(parts, when)
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		parts = append(parts, "Forbid: a run is skipped while the previous one runs")
	case batchv1.ReplaceConcurrent:
		parts = append(parts, "Replace: a run stops the previous one")
	default:
		parts = append(parts, "Allow: runs may overlap")
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		parts = append(parts, "a run not started within "+prose.Duration(time.Duration(*d)*time.Second)+" is skipped")
	}
	parts = append(parts, "each run a Job "+cj.Name+"-<minutes since 1970>: "+describeJob(&cj.Spec.JobTemplate.Spec, cj.Spec.JobTemplate.Annotations))
	succeeded, failed := int32(3), int32(1)
	if cj.Spec.SuccessfulJobsHistoryLimit != nil {
		succeeded = *cj.Spec.SuccessfulJobsHistoryLimit
	}
	if cj.Spec.FailedJobsHistoryLimit != nil {
		failed = *cj.Spec.FailedJobsHistoryLimit
	}
	parts = append(parts, fmt.Sprintf("keeps %d succeeded and %d failed Job%s", succeeded, failed, pluralS(failed != 1)))
	return strings.Join(parts, "; ")
}

func describeReplicated(name string, replicas *int32, spec *corev1.PodSpec, suffix string) string {
	n := replicasOf(replicas)
	s := fmt.Sprintf("%d replica%s with generated names (%s-%s), any one replaceable by another", n, pluralS(n != 1), name, suffix)
	if claims := claimVolumes(spec); len(claims) > 0 {
		s += "; all share claim " + strings.Join(claims, ", ")
	}
	return s
}

func deploymentStrategy(d *appsv1.Deployment) string {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return "; updated by stopping every pod first (Recreate)"
	}
	surge, unavailable := "25%", "25%"
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = ru.MaxSurge.String()
		}
		if ru.MaxUnavailable != nil {
			unavailable = ru.MaxUnavailable.String()
		}
	}
	return fmt.Sprintf("; rolling update (maxSurge %s, maxUnavailable %s)", surge, unavailable)
}

func ownedBy(refs []metav1.OwnerReference) string {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return fmt.Sprintf("; owned by %s %s", r.Kind, r.Name)
		}
	}
	return ""
}

func claimVolumes(spec *corev1.PodSpec) []string {
	var out []string
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

func describePod(p *corev1.Pod) (string, string, string) {
	for _, r := range p.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return readingBarePod, "", fmt.Sprintf("a pod of %s %s", r.Kind, r.Name)
		}
	}
	restart := p.Spec.RestartPolicy
	if restart == "" {
		restart = corev1.RestartPolicyAlways
	}
	return readingBarePod, "Pod", fmt.Sprintf("nothing recreates it if it is deleted or its node fails (restartPolicy %s)", restart)
}

func describeService(o *object, svc *corev1.Service) string {
	sel := labelList(svc.Spec.Selector)
	pods := "pods labelled " + sel
	if sel == "" {
		pods = "endpoints managed by hand (no selector)"
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return "a DNS alias for " + svc.Spec.ExternalName
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		return fmt.Sprintf("headless Service: no virtual IP; DNS names <pod>.%s.%s.svc.cluster.local for %s", svc.Name, o.namespace(), pods)
	}
	kind := "a virtual IP"
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		kind = "a virtual IP and a port on every node"
	case corev1.ServiceTypeLoadBalancer:
		kind = "a virtual IP, node ports and a load balancer"
	}
	return fmt.Sprintf("Service: %s in front of %s%s", kind, pods, servicePorts(svc))
}

func servicePorts(svc *corev1.Service) string {
	var ports []string
	for _, p := range svc.Spec.Ports {
		s := fmt.Sprint(p.Port)
		if p.TargetPort != (intstr.IntOrString{}) && p.TargetPort.String() != s {
			s += "→" + p.TargetPort.String()
		}
		ports = append(ports, s)
	}
	if len(ports) == 0 {
		return ""
	}
	return ", port " + strings.Join(ports, ", ")
}

func describeClaim(c *corev1.PersistentVolumeClaim) string {
	return "a claim of " + claimShape(&c.Spec)
}

func replicasOf(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func pluralS(many bool) string {
	if many {
		return "s"
	}
	return ""
}

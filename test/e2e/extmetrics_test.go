package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/test/cluster"
)

// extensionObjects exercise the StatefulSet and DaemonSet metrics and the
// extensions' own: a StatefulSet of one pod that never becomes Ready,
// replaced after 5 s once its template is fixed (replace-unready-after); a
// DaemonSet whose rollout is limited to nodes no node matches
// (rollout-node-selector); a Job failing three times with a 1 s retry
// delay (backoff-base/-max); and a Job with an unusable backoff-max.
func extensionObjects(jobManagedBy *string) string {
	managedBy := ""
	if jobManagedBy != nil {
		managedBy = "\n  managedBy: " + *jobManagedBy
	}
	return `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: ext-web
  annotations: {quartet.dev/replace-unready-after: "5s"}
spec:
  replicas: 1
  serviceName: ext-web
  selector: {matchLabels: {app: ext-web}}
  template:
    metadata:
      labels: {app: ext-web}
      annotations: {quartet.dev/sim-ready: "false"}
    spec:
      containers: [{name: web, image: example.com/web:1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ext-agent
  annotations: {quartet.dev/rollout-node-selector: "quartet.dev/canary=true"}
spec:
  selector: {matchLabels: {app: ext-agent}}
  template:
    metadata: {labels: {app: ext-agent}}
    spec:
      containers: [{name: agent, image: example.com/agent:1}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ext-retry
  annotations: {quartet.dev/backoff-base: "1s", quartet.dev/backoff-max: "2s"}
spec:` + managedBy + `
  backoffLimit: 2
  template:
    metadata:
      annotations: {quartet.dev/sim-exit-code: "1", quartet.dev/sim-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: example.com/work:1}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ext-invalid
  annotations: {quartet.dev/backoff-max: "soon"}
spec:` + managedBy + `
  template:
    metadata:
      annotations: {quartet.dev/sim-exit-code: "0", quartet.dev/sim-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: example.com/work:1}]
`
}

// TestExtensionMetrics checks the StatefulSet and DaemonSet metrics and
// the extensions' counters on `quartet up`'s apiserver /metrics (the
// process's registry). TestControllersBesideCluster runs the same check
// on `quartet controllers`' /metrics.
func TestExtensionMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := start(t, cluster.Options{Args: []string{"--nodes=1", "--runtime=sim", "--ui=false"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	checkExtensionMetrics(t, ctx, c, client, 1, nil, func() (map[string]*dto.MetricFamily, error) {
		out, err := c.Kubectl(ctx, "", "get", "--raw", "/metrics")
		if err != nil {
			return nil, err
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		return parser.TextToMetricFamilies(strings.NewReader(out))
	})
}

// checkExtensionMetrics applies extensionObjects in namespace default of a
// cluster of nodes nodes, drives them, and checks the metrics scrape
// returns.
func checkExtensionMetrics(t *testing.T, ctx context.Context, c *cluster.Cluster, client kubernetes.Interface, nodes int,
	jobManagedBy *string, scrape func() (map[string]*dto.MetricFamily, error)) {
	t.Helper()
	waitFor(t, ctx, "the default service account", func() (bool, string) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	kubectl(t, c, extensionObjects(jobManagedBy), "apply", "-f", "-")
	waitFor(t, ctx, "ext-web-0 Running and not Ready", func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "ext-web-0", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, fmt.Sprint(err)
	})
	waitFor(t, ctx, "ext-agent's pods Ready", func() (bool, string) {
		d, err := client.AppsV1().DaemonSets("default").Get(ctx, "ext-agent", metav1.GetOptions{})
		return err == nil && d.Status.NumberReady == int32(nodes), fmt.Sprintf("%+v %v", d.Status, err)
	})
	kubectl(t, c, "", "patch", "sts/ext-web", "--type=json", "-p",
		`[{"op":"remove","path":"/spec/template/metadata/annotations"},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"example.com/web:2"}]`)
	kubectl(t, c, "", "set", "image", "ds/ext-agent", "agent=example.com/agent:2")
	waitFor(t, ctx, "ext-web-0 replaced and Ready", func() (bool, string) {
		s, err := client.AppsV1().StatefulSets("default").Get(ctx, "ext-web", metav1.GetOptions{})
		return err == nil && s.Status.UpdatedReplicas == 1 && s.Status.AvailableReplicas == 1, fmt.Sprintf("%+v %v", s.Status, err)
	})
	for name, want := range map[string]batchv1.JobConditionType{"ext-retry": batchv1.JobFailed, "ext-invalid": batchv1.JobComplete} {
		waitFor(t, ctx, "Job "+name+" "+string(want), func() (bool, string) {
			j, err := client.BatchV1().Jobs("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, cond := range j.Status.Conditions {
				if cond.Type == want && cond.Status == corev1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", j.Status)
		})
	}
	checks := []struct {
		name    string
		labels  map[string]string
		want    float64
		atLeast bool
	}{
		{"quartet_statefulset_controller_unready_pod_replacements_total", map[string]string{"statefulset_namespace": "default"}, 1, false},
		{"statefulset_controller_statefulset_unavailable_replicas", map[string]string{"statefulset_name": "ext-web", "pod_management_policy": "OrderedReady"}, 0, false},
		{"statefulset_controller_statefulset_max_unavailable", map[string]string{"statefulset_name": "ext-web"}, 1, false},
		{"quartet_daemonset_controller_rollout_held_pods", map[string]string{"daemonset_name": "ext-agent"}, float64(nodes), false},
		// One observation per sync that finds new failures: at least the
		// two failures that were retried.
		{"quartet_job_controller_retry_delay_seconds", map[string]string{"policy": "annotations"}, 2, true},
		{"quartet_job_controller_invalid_backoff_annotations_total", nil, 1, false},
	}
	waitFor(t, ctx, "the StatefulSet, DaemonSet and extension metrics", func() (bool, string) {
		families, err := scrape()
		if err != nil {
			return false, err.Error()
		}
		var wrong []string
		for _, c := range checks {
			v := metricValue(families, c.name, c.labels)
			if v != c.want && (!c.atLeast || v < c.want) {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v, want %v", c.name, c.labels, v, c.want))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "\n")
	})
}

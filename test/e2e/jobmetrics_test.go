package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/test/cluster"
)

// jobMetricsJobs are four sim Jobs, each exercising one of upstream's rarer
// Job metrics: an Indexed Job whose two indexes succeed; an Indexed Job
// with backoffLimitPerIndex 0 whose two indexes fail under a FailIndex rule;
// a Job whose failures a Count rule counts, replaced once under
// podReplacementPolicy Failed before backoffLimit 1 fails it; and a Job
// handed to another controller.
const jobMetricsJobs = `apiVersion: batch/v1
kind: Job
metadata: {name: indexed-ok}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    metadata:
      annotations: {quartet.dev/sim-exit-code: "0", quartet.dev/sim-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: example.com/work:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: per-index}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  backoffLimitPerIndex: 0
  podFailurePolicy:
    rules:
      - action: FailIndex
        onExitCodes: {operator: In, values: [3]}
  template:
    metadata:
      annotations: {quartet.dev/sim-exit-code: "3", quartet.dev/sim-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: example.com/work:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: replaced}
spec:
  backoffLimit: 1
  podReplacementPolicy: Failed
  podFailurePolicy:
    rules:
      - action: Count
        onExitCodes: {operator: In, values: [1]}
  template:
    metadata:
      annotations: {quartet.dev/sim-exit-code: "1", quartet.dev/sim-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: example.com/work:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: elsewhere}
spec:
  managedBy: example.com/other-controller
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: example.com/work:1}]
`

// TestJobMetrics runs Jobs on `quartet up`'s own Job controller and scrapes
// the apiserver's /metrics (the process's registry, where the controllers'
// metrics are), parsed with Prometheus's expfmt: upstream's rarer Job
// metrics, under upstream's names and labels, count what those Jobs did.
func TestJobMetrics(t *testing.T) {
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
	waitFor(t, ctx, "the default service account", func() (bool, string) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	kubectl(t, c, jobMetricsJobs, "apply", "-f", "-")
	finished := map[string]batchv1.JobConditionType{"indexed-ok": batchv1.JobComplete, "per-index": batchv1.JobFailed, "replaced": batchv1.JobFailed}
	for name, want := range finished {
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
		name   string
		labels map[string]string
		want   float64
	}{
		{"job_controller_job_finished_indexes_total", map[string]string{"status": "succeeded", "backoffLimit": "global"}, 2},
		{"job_controller_job_finished_indexes_total", map[string]string{"status": "failed", "backoffLimit": "perIndex"}, 2},
		{"job_controller_pod_failures_handled_by_failure_policy_total", map[string]string{"action": "FailIndex"}, 2},
		{"job_controller_pod_failures_handled_by_failure_policy_total", map[string]string{"action": "Count"}, 2},
		{"job_controller_job_pods_creation_total", map[string]string{"reason": "new", "status": "succeeded"}, 5},
		{"job_controller_job_pods_creation_total", map[string]string{"reason": "recreate_failed", "status": "succeeded"}, 1},
		{"job_controller_job_pods_creation_total", map[string]string{"status": "failed"}, 0},
		{"job_controller_jobs_by_external_controller_total", map[string]string{"controller_name": "example.com/other-controller"}, 1},
	}
	waitFor(t, ctx, "upstream's rarer Job metrics on the apiserver's /metrics", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "--raw", "/metrics")
		if err != nil {
			return false, err.Error()
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(out))
		if err != nil {
			return false, "parsing /metrics: " + err.Error()
		}
		var wrong []string
		for _, c := range checks {
			if v := metricValue(families, c.name, c.labels); v != c.want {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v, want %v", c.name, c.labels, v, c.want))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "\n")
	})
	// The Job handed to another controller is left alone.
	j, err := client.BatchV1().Jobs("default").Get(ctx, "elsewhere", metav1.GetOptions{})
	if err != nil || j.Status.StartTime != nil {
		t.Errorf("Job elsewhere (managedBy another controller) was taken: %+v %v", j.Status, err)
	}
}

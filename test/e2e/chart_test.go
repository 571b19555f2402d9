package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"quartet.dev/quartet/test/cluster"
)

// helm runs bin/helm (make bin/helm, pinned in tools/helm/go.mod; $HELM
// names another) with its config, cache and data in a temp dir.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		root, err := cluster.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin", "helm")
		if _, err := os.Stat(bin); err != nil {
			t.Skip("no bin/helm: make bin/helm (make test builds it)")
		}
	}
	home := filepath.Join(os.TempDir(), "quartet-helm-"+filepath.Base(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { os.RemoveAll(home) })
	return string(out), err
}

// object is what the tests read of a manifest's objects.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Rules    []rbacv1.PolicyRule `json:"rules"`
	RoleRef  rbacv1.RoleRef      `json:"roleRef"`
	Subjects []rbacv1.Subject    `json:"subjects"`
}

func objects(t *testing.T, manifest string) map[string]object {
	t.Helper()
	out := map[string]object{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		if o.Kind != "" {
			out[o.Kind+" "+o.Metadata.Name] = o
		}
	}
}

func deployObjects(t *testing.T, files ...string) map[string]object {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]object{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		for k, o := range objects(t, string(b)) {
			all[k] = o
		}
	}
	return all
}

var allControllers = []string{"statefulset", "daemonset", "job", "cronjob", "ttlafterfinished"}

// TestChart renders deploy/chart with helm (lint, template), checks that its
// roles are deploy/'s, applies it with a server-side dry run to a quartet
// cluster, installs it, and runs `quartet controllers` with the token of
// the chart's service account: the chart's permissions are enough for
// every controller, and a Job naming quartet completes.
func TestChart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(root, "deploy", "chart")
	all := "controllers={" + strings.Join(allControllers, ",") + "}"
	for _, args := range [][]string{{"lint", "--strict", chart}, {"lint", "--strict", chart, "--set", all}} {
		if out, err := helm(t, args...); err != nil {
			t.Fatalf("helm %v: %v\n%s", args, err, out)
		}
	}
	for set, want := range map[string]string{
		"controllers={jobs}": `unknown controller "jobs"`,
		"controllers=null":   "choose at least one",
	} {
		if out, err := helm(t, "template", "quartet-controllers", chart, "--set", set); err == nil || !strings.Contains(out, want) {
			t.Errorf("helm template --set %s: err %v, want an error saying %q:\n%s", set, err, want, out)
		}
	}
	defaults, err := helm(t, "template", "quartet-controllers", chart, "--namespace", cluster.ControllersNamespace)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, defaults)
	}
	rendered, err := helm(t, "template", "quartet-controllers", chart, "--namespace", cluster.ControllersNamespace, "--set", all, "--set", "upstreamControllersDisabled=true")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, rendered)
	}
	checkChartRoles(t, objects(t, defaults), []string{"job"})
	checkChartRoles(t, objects(t, rendered), allControllers)

	c := start(t, cluster.Options{Args: []string{"--workload-controllers=none", "--nodes=1", "--runtime=sim", "--ui=false"}})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	kubectl(t, c, "", "create", "namespace", cluster.ControllersNamespace)
	out := kubectl(t, c, rendered, "apply", "--dry-run=server", "-f", "-")
	if !strings.Contains(out, "deployment.apps/quartet-controllers created (server dry run)") {
		t.Errorf("server-side dry run of the chart:\n%s", out)
	}
	// Installed with no replicas: the test runs the controllers itself, as
	// the chart's service account.
	if out, err := helm(t, "install", "quartet-controllers", chart, "--kubeconfig", c.Kubeconfig, "--namespace", cluster.ControllersNamespace,
		"--set", all, "--set", "upstreamControllersDisabled=true", "--set", "replicas=0", "--wait", "--timeout", "2m"); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	kubeconfig, err := c.ServiceAccountKubeconfig(ctx, cluster.ControllersNamespace, "quartet-controllers")
	if err != nil {
		t.Fatal(err)
	}
	r := replica(t, "chart", kubeconfig, append([]string{"--controllers=*", "--upstream-controllers-disabled"}, leaseFlags...)...)
	leader(t, ctx, r)
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	quartetJob := "quartet.dev/job-controller"
	if _, err := client.BatchV1().Jobs("default").Create(ctx, managedJob("charted", 2, 2, "0", &quartetJob), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	shortLived := managedJob("short-lived", 1, 1, "0", &quartetJob)
	shortLived.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	if _, err := client.BatchV1().Jobs("default").Create(ctx, shortLived, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "Job charted Complete", func() (bool, string) {
		j, err := client.BatchV1().Jobs("default").Get(ctx, "charted", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", j.Status)
	})
	checkControllerMetrics(t, ctx, r, bindScraper(t, ctx, client))
	if out, err := helm(t, "uninstall", "quartet-controllers", "--kubeconfig", c.Kubeconfig, "--namespace", cluster.ControllersNamespace, "--wait"); err != nil {
		t.Errorf("helm uninstall: %v\n%s", err, out)
	}
}

// checkChartRoles compares the rendered chart's roles and bindings with
// deploy/'s: the same rules for the chosen controllers (and no others), the
// same Role for the Lease and the probe, the same metrics roles.
func checkChartRoles(t *testing.T, chart map[string]object, chosen []string) {
	t.Helper()
	deploy := deployObjects(t, "quartet-controllers.yaml", "takeover.yaml")
	account := rbacv1.Subject{Kind: "ServiceAccount", Name: "quartet-controllers", Namespace: cluster.ControllersNamespace}
	same := func(chartName, deployName string) {
		t.Helper()
		got, ok := chart[chartName]
		if !ok {
			t.Errorf("the chart renders no %s", chartName)
			return
		}
		if diff := cmp.Diff(deploy[deployName].Rules, got.Rules); diff != "" {
			t.Errorf("the chart's %s differs from deploy/'s %s (-deploy +chart):\n%s", chartName, deployName, diff)
		}
	}
	bound := func(binding, role string) {
		t.Helper()
		b, ok := chart[binding]
		if !ok {
			t.Errorf("the chart renders no %s", binding)
			return
		}
		if b.RoleRef.Name != role || len(b.Subjects) != 1 || b.Subjects[0] != account {
			t.Errorf("%s binds %s to %v; want %s to %v", binding, b.RoleRef.Name, b.Subjects, role, account)
		}
	}
	for _, n := range allControllers {
		name := "quartet-controllers:controller:" + n
		_, rendered := chart["ClusterRole "+name]
		if !slices.Contains(chosen, n) {
			if rendered {
				t.Errorf("the chart renders ClusterRole %s, not chosen", name)
			}
			continue
		}
		same("ClusterRole "+name, "ClusterRole quartet:controller:"+n)
		bound("ClusterRoleBinding "+name, name)
	}
	same("Role quartet-controllers", "Role quartet-controllers")
	bound("RoleBinding quartet-controllers", "quartet-controllers")
	same("ClusterRole quartet-controllers:metrics-reader", "ClusterRole quartet-controllers:metrics-reader")
	bound("ClusterRoleBinding quartet-controllers:auth-delegator", "system:auth-delegator")
}

// checkControllerMetrics scrapes a `quartet controllers` that ran Job
// charted (2 pods succeeded) and Job short-lived (deleted by its TTL of 0):
// upstream's Job, CronJob and TTL-after-finished controller metric names
// are there, with what those Jobs did.
func checkControllerMetrics(t *testing.T, ctx context.Context, r *cluster.Controllers, token string) {
	t.Helper()
	waitFor(t, ctx, "upstream's controller metrics on /metrics", func() (bool, string) {
		families, err := metricFamilies(ctx, r.MetricsAddr, token)
		if err != nil {
			return false, err.Error()
		}
		checks := []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"job_controller_job_sync_duration_seconds", map[string]string{"result": "success", "action": "pods_created"}, 2},
			{"job_controller_job_syncs_total", map[string]string{"completion_mode": "NonIndexed", "result": "success"}, 2},
			{"job_controller_jobs_finished_total", map[string]string{"completion_mode": "NonIndexed", "result": "succeeded", "reason": "CompletionsReached"}, 2},
			{"job_controller_job_pods_finished_total", map[string]string{"completion_mode": "NonIndexed", "result": "succeeded"}, 3},
			{"job_controller_terminated_pods_tracking_finalizer_total", map[string]string{"event": "add"}, 3},
			{"job_controller_terminated_pods_tracking_finalizer_total", map[string]string{"event": "delete"}, 3},
			{"ttl_after_finished_controller_job_deletion_duration_seconds", nil, 1},
			{"cronjob_controller_job_creation_skew_duration_seconds", nil, 0},
		}
		var wrong []string
		for _, c := range checks {
			if v := metricValue(families, c.name, c.labels); v < c.min {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v, want >= %v", c.name, c.labels, v, c.min))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "\n")
	})
}

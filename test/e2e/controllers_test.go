package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/test/cluster"
)

// replica starts a `quartet controllers` process and stops it at the end.
func replica(t *testing.T, name, kubeconfig string, args ...string) *cluster.Controllers {
	t.Helper()
	k, err := cluster.StartControllers(name, kubeconfig, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Cleanup(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("quartet controllers %s output:\n%s", name, k.Output.String())
		}
	})
	return k
}

// Lease timings short enough for a test, long enough for a loaded machine.
var leaseFlags = []string{"--leader-elect-lease-duration=8s", "--leader-elect-renew-deadline=6s", "--leader-elect-retry-period=1s"}

// leader waits until exactly one of the replicas leads and returns it.
func leader(t *testing.T, ctx context.Context, replicas ...*cluster.Controllers) *cluster.Controllers {
	t.Helper()
	var lead *cluster.Controllers
	waitFor(t, ctx, "one replica leading", func() (bool, string) {
		lead = nil
		n := 0
		var seen []string
		for _, r := range replicas {
			if r.Leading() {
				lead, n = r, n+1
				seen = append(seen, r.Name)
			}
		}
		return n == 1, fmt.Sprintf("leading: %v", seen)
	})
	return lead
}

func managedJob(name string, completions, parallelism int32, seconds string, managedBy *string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Completions: &completions, Parallelism: &parallelism, ManagedBy: managedBy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"quartet.dev/sim-exit-code": "0", "quartet.dev/sim-run-seconds": seconds}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "work", Image: "example.com/work:1"}}},
			},
		},
	}
}

// TestControllersBesideCluster runs two `quartet controllers` replicas, with
// deploy/'s permissions, beside a cluster without workload controllers:
// permission check, leader election, metrics, and fail-over by kill -9
// mid-Job and mid-rollout with nothing lost or doubled, then a graceful
// hand-over.
func TestControllersBesideCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := start(t, cluster.Options{Args: []string{"--workload-controllers=none", "--nodes=2", "--runtime=sim", "--ui=false"}})
	if !strings.Contains(c.Output.String(), "none (--workload-controllers none)") {
		t.Errorf("quartet up does not say it runs no workload controllers:\n%s", c.Output.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}

	// deploy/quartet-controllers.yaml alone grants the Job controller's
	// permissions: asking for more is refused, listing what is missing.
	jobOnly, err := c.InstallControllerAccess(ctx, "quartet-controllers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := runBinary(c.Bin, append([]string{"controllers", "--kubeconfig", jobOnly, "--controllers=job,statefulset",
		"--health-address=", "--metrics-address="}, leaseFlags...)...)
	for _, want := range []string{"lacks", "permission(s)", "list statefulsets.apps in every namespace", "create persistentvolumeclaims in every namespace"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("without the StatefulSet controller's permissions: err %v, output lacks %q:\n%s", err, want, out)
		}
	}
	if strings.Contains(out, "jobs.batch") {
		t.Errorf("the Job controller's permissions are granted, yet listed as missing:\n%s", out)
	}

	kubeconfig, err := c.InstallControllerAccess(ctx, "quartet-controllers.yaml", "takeover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := replica(t, "replica-a", kubeconfig, leaseFlags...)
	b := replica(t, "replica-b", kubeconfig, leaseFlags...)
	lead := leader(t, ctx, a, b)
	other := map[*cluster.Controllers]*cluster.Controllers{a: b, b: a}

	scraper := checkHealthAndMetrics(t, ctx, c, client, lead, other[lead])

	// A Job of 8 completions, 2 at a time, 2 s each; a plain Job beside it,
	// which belongs to the cluster's own Job controller (none here).
	jobs := client.BatchV1().Jobs("default")
	quartetJob := "quartet.dev/job-controller"
	if _, err := jobs.Create(ctx, managedJob("work", 8, 2, "2", &quartetJob), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Create(ctx, managedJob("plain", 1, 1, "0", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "2 completions of Job work", func() (bool, string) {
		j, err := jobs.Get(ctx, "work", metav1.GetOptions{})
		return err == nil && j.Status.Succeeded >= 2, fmt.Sprintf("%+v %v", j.Status, err)
	})
	if err := lead.Kill(); err != nil {
		t.Fatal(err)
	}
	lead = leader(t, ctx, a, b)
	if err := other[lead].Restart(); err != nil { // as a Deployment would
		t.Fatal(err)
	}
	waitFor(t, ctx, "Job work Complete after the fail-over", func() (bool, string) {
		j, err := jobs.Get(ctx, "work", metav1.GetOptions{})
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
	j, _ := jobs.Get(ctx, "work", metav1.GetOptions{})
	pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "job-name=work"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status.Succeeded != 8 || j.Status.Failed != 0 || len(pods.Items) != 8 {
		t.Errorf("after the fail-over: succeeded %d failed %d, %d pods; want 8, 0 and 8 (nothing lost or doubled)", j.Status.Succeeded, j.Status.Failed, len(pods.Items))
	}
	for _, p := range pods.Items {
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s keeps finalizers %v", p.Name, p.Finalizers)
		}
	}
	plain, _ := jobs.Get(ctx, "plain", metav1.GetOptions{})
	if plainPods, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "job-name=plain"}); plain.Status.StartTime != nil || len(plainPods.Items) != 0 {
		t.Errorf("a Job without spec.managedBy was taken: status %+v, %d pods", plain.Status, len(plainPods.Items))
	}

	// A rolling update of a 3-pod StatefulSet, its leader killed mid-way.
	kubectl(t, c, statefulSet("1"), "apply", "-f", "-")
	waitSet(t, ctx, client, 3, 1)
	kubectl(t, c, statefulSet("2"), "apply", "-f", "-")
	waitFor(t, ctx, "the rollout under way", func() (bool, string) {
		s, err := client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Status.UpdatedReplicas >= 1, fmt.Sprintf("%+v %v", s.Status, err)
	})
	if err := lead.Kill(); err != nil {
		t.Fatal(err)
	}
	lead = leader(t, ctx, a, b)
	if err := other[lead].Restart(); err != nil {
		t.Fatal(err)
	}
	waitSet(t, ctx, client, 3, 2)

	// SIGTERM: the leader stops its controllers and releases the Lease, so
	// the other leads without waiting for the Lease to expire.
	stopped := time.Now()
	if err := lead.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lead.Output.String(), "released the Lease") {
		t.Errorf("the leader did not say it released the Lease:\n%s", lead.Output.String())
	}
	lease, err := client.CoordinationV1().Leases(cluster.ControllersNamespace).Get(ctx, "quartet-controllers", metav1.GetOptions{})
	if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == lead.Name {
		t.Errorf("the Lease still names %s after its SIGTERM", lead.Name)
	}
	next := leader(t, ctx, other[lead])
	t.Logf("hand-over on SIGTERM: %s leads %.1fs after %s stopped", next.Name, time.Since(stopped).Seconds(), lead.Name)

	// The StatefulSet, DaemonSet and extension metrics, on the leader's
	// /metrics (a fresh process since its restart: its counts are the
	// extension objects' alone).
	checkExtensionMetrics(t, ctx, c, client, 2, &quartetJob, func() (map[string]*dto.MetricFamily, error) {
		return metricFamilies(ctx, next.MetricsAddr, scraper)
	})
}

// statefulSet is a 3-pod OrderedReady StatefulSet whose pod template
// carries a version annotation.
func statefulSet(version string) string {
	return `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: default
spec:
  replicas: 3
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {example.com/version: "` + version + `"}
    spec:
      containers:
        - name: web
          image: nginx:1.27
`
}

// waitSet waits for the StatefulSet web to have n pods, all Ready and of
// the current revision, the version annotation's, and no other pod.
func waitSet(t *testing.T, ctx context.Context, client kubernetes.Interface, n int32, version int) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("StatefulSet web: %d pods of version %d, Ready", n, version), func() (bool, string) {
		s, err := client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err.Error()
		}
		st := s.Status
		done := st.ObservedGeneration == s.Generation && st.ReadyReplicas == n && st.UpdatedReplicas == n &&
			st.CurrentRevision == st.UpdateRevision && int32(len(pods.Items)) == n
		for _, p := range pods.Items {
			if p.Annotations["example.com/version"] != fmt.Sprint(version) {
				done = false
			}
		}
		return done, fmt.Sprintf("%+v, %d pods", st, len(pods.Items))
	})
}

// checkHealthAndMetrics checks both replicas' health endpoints and the
// leader's /metrics: refused without a token or with one not allowed to get
// /metrics, served to one bound to deploy/'s metrics-reader role, in the
// Prometheus text format with the work queue metrics under upstream's
// names.
func checkHealthAndMetrics(t *testing.T, ctx context.Context, c *cluster.Cluster, client kubernetes.Interface, lead, standby *cluster.Controllers) (scraper string) {
	t.Helper()
	for _, r := range []*cluster.Controllers{lead, standby} {
		for _, path := range []string{"/healthz", "/readyz"} {
			waitFor(t, ctx, r.Name+path, func() (bool, string) {
				resp, err := http.Get("http://" + r.HealthAddr + path)
				if err != nil {
					return false, err.Error()
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK, resp.Status
			})
		}
	}
	for tok, want := range map[string]int{"": http.StatusUnauthorized, accountToken(t, ctx, client, "nobody"): http.StatusForbidden} {
		if _, err := metricFamilies(ctx, lead.MetricsAddr, tok); err == nil || !strings.Contains(err.Error(), itoa(want)) {
			t.Errorf("/metrics answered %v, want %d", err, want)
		}
	}
	scraper = bindScraper(t, ctx, client)
	waitFor(t, ctx, "/metrics with the job queue's metrics", func() (bool, string) {
		families, err := metricFamilies(ctx, lead.MetricsAddr, scraper)
		if err != nil {
			return false, err.Error()
		}
		var missing []string
		for _, name := range []string{"workqueue_depth", "workqueue_adds_total", "workqueue_queue_duration_seconds",
			"workqueue_work_duration_seconds", "workqueue_retries_total", "leader_election_master_status", "rest_client_requests_total"} {
			if families[name] == nil {
				missing = append(missing, name)
			}
		}
		queues := map[string]bool{}
		if f := families["workqueue_adds_total"]; f != nil {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "name" {
						queues[l.GetValue()] = true
					}
				}
			}
		}
		for _, q := range []string{"statefulset", "daemonset", "job", "cronjob", "ttl_jobs_to_delete"} {
			if !queues[q] {
				missing = append(missing, "queue "+q)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
	return scraper
}

// TestControllersBesideUpstream runs `quartet controllers` in a cluster
// that runs upstream's workload controllers: the probe refuses a
// StatefulSet controller beside upstream's, and with the Job controller
// alone each controller runs only its own Jobs.
func TestControllersBesideUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := start(t, cluster.Options{Args: []string{"--workload-controllers=upstream", "--nodes=1", "--runtime=sim", "--ui=false"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := c.InstallControllerAccess(ctx, "quartet-controllers.yaml", "takeover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = cluster.StartControllers("refused", kubeconfig, "--controllers=statefulset,job", "--upstream-probe-timeout=30s")
	// Upstream's controllers in quartet's process write under the binary's
	// name ("quartet"), where kube-controller-manager's would write as
	// "kube-controller-manager": the probe names whichever it saw.
	for _, want := range []string{"another statefulset controller is running", `field manager "quartet")`, "--upstream-controllers-disabled"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("beside upstream's StatefulSet controller: %v; want it refused with %q", err, want)
		}
	}
	probes, _ := client.AppsV1().StatefulSets(cluster.ControllersNamespace).List(ctx, metav1.ListOptions{})
	if probes != nil && len(probes.Items) != 0 {
		t.Errorf("the probe left %d StatefulSets behind", len(probes.Items))
	}
	// Taking over the Jobs without spec.managedBy beside the cluster's own
	// Job controller is refused the same way.
	_, err = cluster.StartControllers("refused-jobs", kubeconfig, "--controllers=job", "--take-over-jobs", "--upstream-probe-timeout=30s")
	for _, want := range []string{"another job controller is running", `field manager "quartet")`, "--controllers=*,-job", "drop --take-over-jobs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--take-over-jobs beside upstream's Job controller: %v; want it refused with %q", err, want)
		}
	}
	if probeJobs, _ := client.BatchV1().Jobs(cluster.ControllersNamespace).List(ctx, metav1.ListOptions{}); probeJobs != nil && len(probeJobs.Items) != 0 {
		t.Errorf("the probe left %d Jobs behind", len(probeJobs.Items))
	}

	replica(t, "jobs", kubeconfig, append([]string{"--controllers=job"}, leaseFlags...)...)
	jobs := client.BatchV1().Jobs("default")
	quartetJob := "quartet.dev/job-controller"
	if _, err := jobs.Create(ctx, managedJob("quartets", 2, 2, "0", &quartetJob), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Create(ctx, managedJob("upstreams", 2, 2, "0", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	statusWriters := func(name string) (complete bool, writers []string) {
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range j.Status.Conditions {
			complete = complete || cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue
		}
		for _, f := range j.ManagedFields {
			if f.Subresource == "status" {
				writers = append(writers, f.Manager)
			}
		}
		return complete, writers
	}
	for name, writer := range map[string]string{"quartets": "quartet-controllers", "upstreams": "quartet"} {
		waitFor(t, ctx, "Job "+name+" Complete", func() (bool, string) {
			done, writers := statusWriters(name)
			return done, fmt.Sprintf("status written by %v", writers)
		})
		if _, writers := statusWriters(name); len(writers) != 1 || writers[0] != writer {
			t.Errorf("Job %s's status was written by %v, want %s alone", name, writers, writer)
		}
	}
}

// TestControllersBadInput checks that each mistake in `quartet controllers`'
// flags gives one clear message and a non-zero exit, before any cluster is
// needed.
func TestControllersBadInput(t *testing.T) {
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A cluster that does not listen: the first request fails.
	free, _ := cluster.FreePort()
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:`+itoa(free)+`"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args []string
		want string
	}{
		"no cluster":          {nil, "say which cluster: --kubeconfig FILE, or --in-cluster in a pod"},
		"both":                {[]string{"--kubeconfig", kubeconfig, "--in-cluster"}, "--kubeconfig and --in-cluster: give one"},
		"in-cluster outside":  {[]string{"--in-cluster"}, "--in-cluster: unable to load in-cluster configuration"},
		"missing kubeconfig":  {[]string{"--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig: "},
		"unknown controller":  {[]string{"--kubeconfig", kubeconfig, "--controllers", "deployment"}, `--controllers: unknown controller "deployment" (want statefulset, daemonset, job, cronjob, ttlafterfinished, or *)`},
		"no controller":       {[]string{"--kubeconfig", kubeconfig, "--controllers", "job,-job"}, "no controller chosen"},
		"lease timings":       {[]string{"--kubeconfig", kubeconfig, "--leader-elect-renew-deadline", "20s"}, "--leader-elect-lease-duration 15s > --leader-elect-renew-deadline 20s"},
		"probe timeout":       {[]string{"--kubeconfig", kubeconfig, "--upstream-probe-timeout", "0s"}, "--upstream-probe-timeout 0s: want a duration above 0"},
		"unreachable cluster": {[]string{"--kubeconfig", kubeconfig}, "reaching the apiserver: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, append([]string{"controllers"}, tc.args...)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("quartet controllers %v: err %v, want a failure saying %q:\n%s", tc.args, err, tc.want, out)
			}
			if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine ") {
				t.Errorf("quartet controllers %v panicked:\n%s", tc.args, out)
			}
		})
	}
}

// accountToken is a token of a service account of namespace default
// (created if need be).
func accountToken(t *testing.T, ctx context.Context, client kubernetes.Interface, account string) string {
	t.Helper()
	_, _ = client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: account}}, metav1.CreateOptions{})
	tr, err := client.CoreV1().ServiceAccounts("default").CreateToken(ctx, account, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// bindScraper binds quartet-controllers:metrics-reader (deploy/'s and the
// chart's) to a service account "scraper" and returns its token.
func bindScraper(t *testing.T, ctx context.Context, client kubernetes.Interface) string {
	t.Helper()
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "quartet-controllers:metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return accountToken(t, ctx, client, "scraper")
}

// metricValue sums the samples of the metric family name (counters'
// values, histograms' counts) whose labels include labels; -1 when the
// family is absent.
func metricValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	total := 0.0
metric:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				continue metric
			}
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// metricFamilies scrapes `quartet controllers`' /metrics at addr with a
// bearer token and parses it with Prometheus's expfmt; an answer other than
// 200 is an error naming its status.
func metricFamilies(ctx context.Context, addr, token string) (map[string]*dto.MetricFamily, error) {
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // self-signed
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return families, nil
}

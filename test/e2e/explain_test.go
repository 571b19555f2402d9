package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

// stuckManifests are an OrderedReady set whose first pod never becomes
// Ready (so web-1 and web-2 are never created), and a Job whose pod fails
// and whose retry delay is ten minutes (quartet's backoff annotation), so
// it sits in back-off.
const stuckManifests = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector: {app: web}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
        quartet.dev/sim-ready: "false"
    spec:
      containers:
        - name: nginx
          image: nginx:1.27
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    quartet.dev/backoff-base: 10m
spec:
  backoffLimit: 3
  ttlSecondsAfterFinished: 600
  activeDeadlineSeconds: 3600
  template:
    metadata:
      annotations:
        quartet.dev/sim-exit-code: "1"
        quartet.dev/sim-run-seconds: "0.5"
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: myapp/migrator:1.4.0
`

// TestExplainLive runs `quartet explain --live` through the binary against a
// running cluster with a stuck StatefulSet and a backed-off Job, and checks
// that each is explained, with why it is stuck, and the exit statuses.
func TestExplainLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: []string{"--nodes=1", "--runtime=sim"}})
	kubectl(t, c, "", "create", "namespace", "stuck")
	kubectl(t, c, stuckManifests, "-n", "stuck", "apply", "-f", "-")

	waitFor(t, ctx, "web-0 Running and not Ready, migrate's pod Failed", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "-n", "stuck", "get", "pods", "--no-headers")
		web, job := false, false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			web = web || (f[0] == "web-0" && f[1] == "0/1" && f[2] == "Running")
			job = job || (strings.HasPrefix(f[0], "migrate-") && f[2] == "Error")
		}
		return err == nil && web && job, out
	})

	explain := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, c.Bin, append([]string{"explain"}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		}
		t.Fatalf("quartet explain: %v\n%s", err, out)
		return "", 0
	}

	var out string
	var code int
	// The Job's back-off starts once the Job controller has counted the
	// failed pod; wait for explain to say so.
	waitFor(t, ctx, "explain --live to see both stuck objects", func() (bool, string) {
		out, code = explain("--live", "-n", "stuck")
		return strings.Count(out, "  stuck: ") == 2, out
	})
	// Stuck lines wrap; compare with single spaces.
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"StatefulSet stuck/web: not interchangeable → pods web-0..web-2",
		"stuck: OrderedReady: creating web-1, web-2 waits for web-0, which is Running but not Ready",
		"Job stuck/migrate: interchangeable, not per node, runs once to completion → 1 completion, 1 at a time, up to 3 retries",
		"stuck: in back-off after 1 failed pod: the next pod starts at ",
		"3 of 3 retries left",
		"Service stuck/web: headless Service",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("explain --live lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("explain --live exited %d, want 0 (stuck objects fail only --strict)\n%s", code, out)
	}
	if _, code := explain("--live", "-n", "stuck", "--strict"); code != 1 {
		t.Errorf("explain --live --strict exited %d, want 1", code)
	}

	js, _ := explain("--live", "-n", "stuck", "-o", "json")
	var r struct {
		Objects []struct{ Kind, Name, Stuck string }
		Counts  struct{ Objects, Stuck int }
	}
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, js)
	}
	if r.Counts.Stuck != 2 {
		t.Errorf("JSON counts %+v, want 2 stuck\n%s", r.Counts, js)
	}

	// Without a cluster: exit status 2 and a clear message.
	cmd := exec.CommandContext(ctx, c.Bin, "explain", "--live", "--kubeconfig", t.TempDir()+"/none")
	msg, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(msg), "no cluster") {
		t.Errorf("explain --live without a cluster: %v\n%s", err, msg)
	}
}

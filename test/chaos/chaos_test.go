// Package chaos is quartet's crash suite (issue 13): `quartet up` is killed
// with SIGKILL at random moments while a Job, an Indexed Job, a StatefulSet
// rollout and a Forbid CronJob run real processes, and started again on the
// same data dir. After every kill and restart nothing may be lost and
// nothing may run twice. `make test` runs a short version; `make chaos`
// the full size (CHAOS_ROUNDS=20 CHAOS_COMPLETIONS=300).
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/test/cluster"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// workload is the suite's objects; every container's shell carries a
// marker argument ("chaos-<pod>") so its process can be found on the host
// (each script ends in a builtin, so the shell stays and keeps it).
func workload(completions, indexed int) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: work
  annotations: {quartet.dev/backoff-base: "1s", quartet.dev/backoff-max: "2s"}
spec:
  completions: %[1]d
  parallelism: 5
  backoffLimit: 100000
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "sleep 2; echo done", "chaos-work"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: idx
  annotations: {quartet.dev/backoff-base: "1s", quartet.dev/backoff-max: "2s"}
spec:
  completions: %[2]d
  parallelism: 4
  completionMode: Indexed
  backoffLimit: 100000
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "sleep 2; echo done", "chaos-idx-$(JOB_COMPLETION_INDEX)"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
        command: ["sh", "-c", "trap 'exit 0' TERM; echo start >> /data/starts; while true; do sleep 1; done", "chaos-$(POD)"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: busybox
            command: ["sh", "-c", "sleep 75; echo done", "chaos-tick"]
`, completions, indexed)
}

// TestKillNineRestarts is the crash suite.
func TestKillNineRestarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the crash suite runs containers with libcontainer, which needs root")
	}
	rounds := envInt("CHAOS_ROUNDS", 3)
	completions := envInt("CHAOS_COMPLETIONS", 20)
	indexed := max(completions/5, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+rounds*2+completions/20)*time.Minute)
	defer cancel()

	c, err := cluster.Start(cluster.Options{Args: []string{"--nodes=3", "--runtime=process"}, ReadyTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("quartet up output:\n%s", c.Output.String())
		}
	})
	kubectl(t, ctx, c, workload(completions, indexed), "apply", "-f", "-")
	claims := waitClaims(t, ctx, c)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))

	for round := 1; round <= rounds; round++ {
		// Let the work go on for a random while, watching the host.
		watchHost(t, ctx, time.Duration(2000+rng.IntN(8000))*time.Millisecond)
		if round%2 == 0 {
			// A StatefulSet rollout in flight at the next kill.
			kubectl(t, ctx, c, "", "patch", "statefulset", "web", "-p",
				fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"round":"%d"}}}}}`, round))
			watchHost(t, ctx, time.Duration(rng.IntN(3000))*time.Millisecond)
		}
		// Kill while Job pods run on the host, unless both Jobs are done.
		busy, cancelBusy := context.WithTimeout(ctx, 30*time.Second)
		jobsDone := func() bool { return complete(getJob(ctx, c, "work")) && complete(getJob(ctx, c, "idx")) }
		for busy.Err() == nil && !jobsRunning() && !jobsDone() {
			time.Sleep(200 * time.Millisecond)
		}
		cancelBusy()
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		w, i := getJob(ctx, c, "work"), getJob(ctx, c, "idx")
		before := markers()
		if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.ExitErr()
		// No process of the killed run survives it (their init dies with
		// quartet; this is seconds, not minutes).
		gone, cancelGone := context.WithTimeout(ctx, 30*time.Second)
		waitFor(t, gone, "round "+itoa(round)+": the killed run's containers gone", func() (bool, string) {
			var alive []string
			for _, p := range before {
				if p.alive() {
					alive = append(alive, p.String())
				}
			}
			return len(alive) == 0, strings.Join(alive, ", ")
		})
		cancelGone()
		if err := c.Restart(); err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		checkAPI(t, ctx, c, round, completions, indexed, claims)
		if t.Failed() {
			return
		}
		t.Logf("round %d: killed with %d container processes running (Job work %s; idx %s), restarted", round, len(before), jobLine(w), jobLine(i))
	}

	// Everything completes, exactly once.
	waitFor(t, ctx, "both Jobs complete", func() (bool, string) {
		w, i := getJob(ctx, c, "work"), getJob(ctx, c, "idx")
		return complete(w) && complete(i), fmt.Sprintf("work %s; idx %s", jobLine(w), jobLine(i))
	})
	watchHost(t, ctx, 2*time.Second)
	checkAPI(t, ctx, c, rounds+1, completions, indexed, claims)
	if w := getJob(ctx, c, "work"); w.Status.Succeeded != int32(completions) {
		t.Errorf("Job work: succeeded %d, want exactly %d", w.Status.Succeeded, completions)
	}
	if i := getJob(ctx, c, "idx"); i.Status.Succeeded != int32(indexed) || i.Status.CompletedIndexes != fmt.Sprintf("0-%d", indexed-1) {
		t.Errorf("Job idx: succeeded %d, completed indexes %q, want %d and 0-%d", i.Status.Succeeded, i.Status.CompletedIndexes, indexed, indexed-1)
	}
	if c.Exited() {
		t.Errorf("quartet up exited: %v", c.ExitErr())
	}
}

// checkAPI checks the invariants the API shows after a restart.
func checkAPI(t *testing.T, ctx context.Context, c *cluster.Cluster, round, completions, indexed int, claims map[string]string) {
	t.Helper()
	if c.Exited() {
		t.Fatalf("round %d: quartet up exited after its restart: %v", round, c.ExitErr())
	}
	var pods corev1.PodList
	if err := getJSON(ctx, c, &pods, "get", "pods", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	succeededIdx := map[string]int{}
	for _, p := range pods.Items {
		if p.Labels["job-name"] == "idx" && p.Status.Phase == corev1.PodSucceeded {
			succeededIdx[p.Annotations[batchv1.JobCompletionIndexAnnotation]]++
		}
	}
	for idx, n := range succeededIdx {
		if n > 1 {
			t.Errorf("round %d: Indexed Job completion index %s succeeded %d times", round, idx, n)
		}
	}
	if w := getJob(ctx, c, "work"); w.Status.Succeeded > int32(completions) {
		t.Errorf("round %d: Job work succeeded %d > completions %d", round, w.Status.Succeeded, completions)
	}
	if i := getJob(ctx, c, "idx"); i.Status.Succeeded > int32(indexed) {
		t.Errorf("round %d: Job idx succeeded %d > completions %d", round, i.Status.Succeeded, indexed)
	}
	var cj batchv1.CronJob
	if err := getJSON(ctx, c, &cj, "get", "cronjob", "tick", "-o", "json"); err == nil && len(cj.Status.Active) > 1 {
		t.Errorf("round %d: Forbid CronJob has %d active Jobs", round, len(cj.Status.Active))
	}
	now := claimUIDs(ctx, c)
	for name, uid := range claims {
		if now[name] != uid {
			t.Errorf("round %d: claim %s was %s, now %q (lost or replaced)", round, name, uid, now[name])
		}
	}
}

// watchHost samples the host's processes for d: a StatefulSet ordinal, a
// completion index or the Forbid CronJob never runs in two processes at once.
func watchHost(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		count := map[string]int{}
		procs := markers()
		byPid := map[int]proc{}
		for _, p := range procs {
			byPid[p.pid] = p
		}
		for _, p := range procs {
			// A shell's child between fork and exec shows its parent's
			// arguments: it is the same container, not a second run.
			if parent, ok := byPid[p.ppid]; ok && parent.marker == p.marker {
				continue
			}
			if p.marker != "chaos-work" {
				count[p.marker]++
			}
		}
		for m, n := range count {
			if n > 1 {
				t.Errorf("%s runs in %d processes at once on the host", m, n)
			}
		}
		if time.Now().After(end) || ctx.Err() != nil || t.Failed() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jobsRunning reports whether a Job's container runs on the host.
func jobsRunning() bool {
	for _, p := range markers() {
		if p.marker == "chaos-work" || strings.HasPrefix(p.marker, "chaos-idx-") {
			return true
		}
	}
	return false
}

// proc is a host process with a chaos marker, by pid and start time.
type proc struct {
	pid, ppid int
	start     string
	marker    string
}

func (p proc) String() string { return fmt.Sprintf("%s (pid %d)", p.marker, p.pid) }

func (p proc) alive() bool {
	start, _ := procStat(p.pid)
	return start == p.start
}

// procStat is field 22 (start time) and field 4 (parent) of
// /proc/<pid>/stat ("" when gone).
func procStat(pid int) (start string, ppid int) {
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return "", 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0
	}
	f := strings.Fields(string(b[i+1:]))
	// A zombie has ended; its parent has just not reaped it yet.
	if len(f) < 20 || f[0] == "Z" {
		return "", 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[19], ppid
}

// markers lists the host's processes whose last argument is a chaos marker.
func markers() []proc {
	var out []proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		last := args[len(args)-1]
		if len(args) < 3 || !strings.HasPrefix(last, "chaos-") {
			continue
		}
		if start, ppid := procStat(pid); start != "" {
			out = append(out, proc{pid: pid, ppid: ppid, start: start, marker: last})
		}
	}
	return out
}

func waitClaims(t *testing.T, ctx context.Context, c *cluster.Cluster) map[string]string {
	t.Helper()
	var claims map[string]string
	waitFor(t, ctx, "the StatefulSet's 3 claims bound", func() (bool, string) {
		claims = claimUIDs(ctx, c)
		return len(claims) == 3, fmt.Sprint(claims)
	})
	return claims
}

// claimUIDs maps each bound claim of the StatefulSet to its UID.
func claimUIDs(ctx context.Context, c *cluster.Cluster) map[string]string {
	var list corev1.PersistentVolumeClaimList
	out := map[string]string{}
	if err := getJSON(ctx, c, &list, "get", "pvc", "-o", "json"); err != nil {
		return out
	}
	for _, p := range list.Items {
		if strings.HasPrefix(p.Name, "data-web-") && p.Status.Phase == corev1.ClaimBound {
			out[p.Name] = string(p.UID)
		}
	}
	return out
}

func getJob(ctx context.Context, c *cluster.Cluster, name string) *batchv1.Job {
	var j batchv1.Job
	_ = getJSON(ctx, c, &j, "get", "job", name, "-o", "json")
	return &j
}

func complete(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobLine(j *batchv1.Job) string {
	return fmt.Sprintf("succeeded %d failed %d active %d", j.Status.Succeeded, j.Status.Failed, j.Status.Active)
}

func getJSON(ctx context.Context, c *cluster.Cluster, into any, args ...string) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := c.Kubectl(cctx, "", args...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), into)
}

func kubectl(t *testing.T, ctx context.Context, c *cluster.Cluster, stdin string, args ...string) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := c.Kubectl(cctx, stdin, args...); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last saw: %s", what, last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	h "quartet.dev/quartet/test/scenarios/harness"
)

// The chapter's manifests: examples/chapter holds them verbatim; the
// DaemonSet runs in the scenario's namespace instead of monitoring.
var (
	webHeadless    = example("web-headless.yaml")
	webStatefulSet = example("web-statefulset.yaml")
	nodeExporter   = strings.Replace(example("node-exporter-daemonset.yaml"), "  namespace: monitoring\n", "", 1)
)

// example reads a manifest from examples/chapter.
func example(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "chapter", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Variants of the chapter's Job and CronJob whose containers are simulated
// and finish on cue (their images' commands do not exist here).
const (
	dbMigration = `apiVersion: batch/v1
kind: Job
metadata:
  name: db-migration
spec:
  completions: 1
  parallelism: 1
  backoffLimit: 4
  activeDeadlineSeconds: 600
  template:
    metadata:
      annotations:
        quartet.dev/sim-run-seconds: "2"
        quartet.dev/sim-exit-code: "0"
    spec:
      restartPolicy: OnFailure
      containers:
        - name: migrator
          image: myapp/migrator:1.4.0
          env:
            - name: DB_HOST
              value: postgres.default.svc.cluster.local
`
	dbBackup = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: db-backup
spec:
  schedule: "0 3 * * *"
  timeZone: "Asia/Seoul"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  startingDeadlineSeconds: 300
  jobTemplate:
    spec:
      backoffLimit: 2
      activeDeadlineSeconds: 1800
      template:
        metadata:
          annotations:
            quartet.dev/sim-run-seconds: "2"
            quartet.dev/sim-exit-code: "0"
        spec:
          restartPolicy: OnFailure
          containers:
            - name: backup
              image: myapp/backup:2.1.0
              env:
                - name: S3_BUCKET
                  value: my-backups
`
)

var _ = h.Register(
	h.Scenario{
		Name:        "chapter/statefulset-web",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webStatefulSet)
			s.WaitFor("web-0, web-1, web-2 Running and Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			s.WaitFor("3 claims Bound", time.Minute, claimsBound(s, "app=web", "data-web-0", "data-web-1", "data-web-2"))
			// "the Pods came up in order 0, 1, 2": each was created only
			// after the one before it was Ready.
			pods := s.Pods("app=web")
			for i := 1; i < len(pods); i++ {
				prevReady := readySince(&pods[i-1])
				s.Expect(!pods[i].CreationTimestamp.Time.Before(prevReady.Truncate(time.Second)),
					"%s was created at %s, before %s was Ready at %s", pods[i].Name, pods[i].CreationTimestamp, pods[i-1].Name, prevReady)
			}
			for i, p := range pods {
				want := fmt.Sprintf("web-%d", i)
				s.Expect(p.Name == want, "pod %d is %s, want %s", i, p.Name, want)
				s.Expect(p.Spec.Hostname == want && p.Spec.Subdomain == "web", "pod %s hostname %q subdomain %q", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
				s.Expect(podClaim(&p, "data") == "data-"+want, "pod %s mounts claim %q", p.Name, podClaim(&p, "data"))
			}
			out := s.Kubectl("", "get", "statefulset", "web", "--no-headers")
			s.Expect(strings.Fields(out)[1] == "3/3", "kubectl get sts web: %s", out)
		},
	},
	h.Scenario{
		Name:        "chapter/statefulset-scale-down-keeps-claims",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webStatefulSet)
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			volumes := claimVolumes(s)
			s.Scale("statefulset/web", 1)
			s.WaitFor("only web-0 left", time.Minute, s.PodsReady("app=web", 1))
			s.Expect(len(claimVolumes(s)) == 3, "claims after scale-down: %v", claimVolumes(s))
			s.Scale("statefulset/web", 3)
			s.WaitFor("3 pods Ready again", 2*time.Minute, s.PodsReady("app=web", 3))
			after := claimVolumes(s)
			for claim, pv := range volumes {
				s.Expect(after[claim] == pv, "claim %s is bound to %s after scale-up, was %s", claim, after[claim], pv)
			}
		},
	},
	h.Scenario{
		Name:        "chapter/exercise-1-delete-web-1",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webStatefulSet)
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			old, _ := s.Pod("web-1")
			s.DeletePod("web-1")
			s.WaitFor("web-1 back and Ready", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-1")
				return ok && p.UID != old.UID && p.Status.Phase == corev1.PodRunning && h.IsPodReady(&p), h.PodSummary(s.Pods("app=web"))
			})
			p, _ := s.Pod("web-1")
			s.Expect(podClaim(&p, "data") == "data-web-1", "recreated web-1 mounts %q", podClaim(&p, "data"))
		},
	},
	h.Scenario{
		Name:        "chapter/daemonset-node-exporter",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			s.Apply(nodeExporter)
			s.WaitFor("DESIRED 3, all available", 2*time.Minute, daemonSetSettled(s, "node-exporter", 3))
			onNodes := map[string]bool{}
			for _, p := range s.Pods("app=node-exporter") {
				onNodes[p.Spec.NodeName] = true
			}
			s.Expect(len(onNodes) == 3, "daemon pods on nodes %v, want one on each of 3", onNodes)
			s.AddNode("node-4")
			s.WaitFor("DESIRED 4 after a node joins", 2*time.Minute, daemonSetSettled(s, "node-exporter", 4))
			s.RemoveNode("node-4")
			s.WaitFor("DESIRED 3 after it leaves", 2*time.Minute, daemonSetSettled(s, "node-exporter", 3))
		},
	},
	h.Scenario{
		Name:        "chapter/daemonset-gpu-node-selector",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			s.Kubectl("", "label", "node", "node-2", "hardware=gpu", "--overwrite")
			defer s.Kubectl("", "label", "node", "node-2", "hardware-")
			s.Apply(strings.Replace(nodeExporter, "      hostNetwork: true\n", "      hostNetwork: true\n      nodeSelector:\n        hardware: gpu\n", 1))
			s.WaitFor("one pod, on node-2", 2*time.Minute, daemonSetSettled(s, "node-exporter", 1))
			pods := s.Pods("app=node-exporter")
			s.Expect(len(pods) == 1 && pods[0].Spec.NodeName == "node-2", "pods: %s", h.PodSummary(pods))
		},
	},
	h.Scenario{
		Name:        "chapter/daemonset-control-plane-toleration",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			s.Kubectl("", "taint", "node", "node-1", "node-role.kubernetes.io/control-plane=:NoSchedule", "--overwrite")
			defer s.Kubectl("", "taint", "node", "node-1", "node-role.kubernetes.io/control-plane:NoSchedule-")
			s.Apply(nodeExporter)
			s.WaitFor("2 pods: not on the tainted node", 2*time.Minute, daemonSetSettled(s, "node-exporter", 2))
			s.Apply(strings.Replace(nodeExporter, "      hostNetwork: true\n", "      hostNetwork: true\n      tolerations:\n        - key: node-role.kubernetes.io/control-plane\n          operator: Exists\n          effect: NoSchedule\n", 1))
			s.WaitFor("3 pods with the toleration", 2*time.Minute, daemonSetSettled(s, "node-exporter", 3))
		},
	},
	h.Scenario{
		Name:        "chapter/drain-ignore-daemonsets",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			s.Apply(nodeExporter)
			s.WaitFor("DESIRED 3", 2*time.Minute, daemonSetSettled(s, "node-exporter", 3))
			defer s.Uncordon("node-1")
			out, err := s.Drain("node-1")
			s.Expect(err != nil && strings.Contains(out, "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"),
				"plain drain: err=%v\n%s", err, out)
			out, err = s.Drain("node-1", "--ignore-daemonsets", "--delete-emptydir-data")
			s.Expect(err == nil, "drain --ignore-daemonsets: %v\n%s", err, out)
			s.WaitFor("daemon pods stay, node-1 cordoned", time.Minute, daemonSetSettled(s, "node-exporter", 3))
			onNode1 := 0
			for _, p := range s.Pods("app=node-exporter") {
				if p.Spec.NodeName == "node-1" {
					onNode1++
				}
			}
			s.Expect(onNode1 == 1, "daemon pods on the drained node-1: %d", onNode1)
		},
	},
	h.Scenario{
		Name:        "chapter/job-db-migration",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			s.Apply(dbMigration)
			s.WaitFor("Complete", 2*time.Minute, s.JobHasCondition("db-migration", batchv1.JobComplete))
			out := s.Kubectl("", "get", "job", "db-migration", "--no-headers")
			s.Expect(strings.Fields(out)[2] == "1/1", "kubectl get jobs: %s", out)
			pods := s.Pods("job-name=db-migration")
			s.Expect(len(pods) == 1 && pods[0].Status.Phase == corev1.PodSucceeded, "pods: %s", h.PodSummary(pods))
			out = s.Kubectl("", "get", "pods", "--selector=job-name=db-migration", "--no-headers")
			s.Expect(strings.Contains(out, "Completed"), "kubectl get pods: %s", out)
		},
	},
	h.Scenario{
		Name:        "chapter/exercise-2-job-fails-after-backoff-limit",
		Controllers: []h.Controller{h.Job},
		Timeout:     4 * time.Minute,
		Run: func(s *h.S) {
			// The chapter's exercise: command false, backoffLimit 2, and
			// restartPolicy Never, so each retry is a new pod.
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: db-migration
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrator
          image: busybox
          command: ["false"]
`)
			s.WaitFor("Failed", 3*time.Minute, s.JobHasCondition("db-migration", batchv1.JobFailed))
			j := s.Job("db-migration")
			s.Expect(failedReason(j) == "BackoffLimitExceeded", "reason %q", failedReason(j))
			pods := s.Pods("job-name=db-migration")
			s.Note("pods when Failed", len(pods))
			s.Expect(len(pods) == 3, "pods: %d (backoffLimit 2 means 3 attempts)\n%s", len(pods), h.PodSummary(pods))
			s.Expect(j.Status.Failed == 3, "status.failed %d", j.Status.Failed)
		},
	},
	h.Scenario{
		Name:        "chapter/restart-policy-always-refused",
		Controllers: []h.Controller{h.None},
		Run: func(s *h.S) {
			out, err := s.ApplyErr(strings.Replace(dbMigration, "restartPolicy: OnFailure", "restartPolicy: Always", 1))
			s.Expect(err != nil && strings.Contains(out, `spec.template.spec.restartPolicy`), "apply: err=%v\n%s", err, out)
			s.Note("apiserver says", lastLine(out))
		},
	},
	h.Scenario{
		Name:        "chapter/cronjob-db-backup",
		Controllers: []h.Controller{h.CronJob, h.Job},
		Run: func(s *h.S) {
			s.Apply(dbBackup)
			out := s.Kubectl("", "get", "cronjob", "db-backup", "--no-headers")
			f := strings.Fields(out)
			s.Expect(len(f) >= 3 && f[1] == "0" && f[2] == "3" && strings.Contains(out, "Asia/Seoul"), "kubectl get cronjob: %s", out)
			s.Never("a Job before 03:00 Seoul", 3*time.Second, func() (bool, string) {
				jobs := s.Jobs()
				return len(jobs) > 0, fmt.Sprint(len(jobs))
			})
			s.Kubectl("", "create", "job", "--from=cronjob/db-backup", "db-backup-manual")
			s.WaitFor("the manual Job completes", 2*time.Minute, s.JobHasCondition("db-backup-manual", batchv1.JobComplete))
		},
	},
	exercise3(batchv1.AllowConcurrent),
	exercise3(batchv1.ForbidConcurrent),
	exercise3(batchv1.ReplaceConcurrent),
	h.Scenario{
		Name:        "chapter/cronjob-no-burst-after-downtime",
		Controllers: []h.Controller{h.CronJob, h.Job},
		OwnCluster:  true,
		Timeout:     16 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(`apiVersion: batch/v1
kind: CronJob
metadata:
  name: every-minute
spec:
  schedule: "*/1 * * * *"
  startingDeadlineSeconds: 300
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            quartet.dev/sim-run-seconds: "1"
            quartet.dev/sim-exit-code: "0"
        spec:
          restartPolicy: OnFailure
          containers:
            - name: tick
              image: myapp/tick:1.0
`)
			s.Eventually("the first scheduled Job, completed", 2*time.Minute, func() (bool, string) {
				jobs := s.Jobs()
				return len(jobs) >= 1 && hasFinished(&jobs[0]), fmt.Sprint(len(jobs))
			})
			s.Sleep(2 * time.Second) // let the controllers' events reach the apiserver before the stop
			before := len(s.Jobs())
			s.Restart(10 * time.Minute)
			// The schedule was missed ten times; only the most recent run
			// within startingDeadlineSeconds may start, and only once.
			s.Sleep(20 * time.Second)
			started := len(s.Jobs()) - before
			s.Note("Jobs started on return", started)
			s.Expect(started <= 1, "%d Jobs started after the downtime, want at most 1", started)
		},
	},
)

// exercise3 is the chapter's exercise 3: examples/chapter/exercise-3-cronjob.yaml
// (the file quartet cron simulate's tests read too: a */1 CronJob whose Jobs
// outlast the minute, sim run 150 s, activeDeadlineSeconds 90) under policy,
// watched over three schedules. The image has no local entrypoint, so the
// auto runtime simulates it and the sim annotations set its run time.
func exercise3(policy batchv1.ConcurrencyPolicy) h.Scenario {
	return h.Scenario{
		Name:        "chapter/exercise-3-" + strings.ToLower(string(policy)),
		Controllers: []h.Controller{h.CronJob, h.Job},
		Timeout:     6 * time.Minute,
		Run: func(s *h.S) {
			manifest := example("exercise-3-cronjob.yaml")
			s.Expect(strings.Contains(manifest, "concurrencyPolicy: Allow\n"), "exercise-3-cronjob.yaml no longer says concurrencyPolicy: Allow")
			s.Apply(strings.Replace(manifest, "concurrencyPolicy: Allow\n", "concurrencyPolicy: "+string(policy)+"\n", 1))
			// Start counting at the first Job, then watch two more minutes.
			s.Eventually("the first Job", 2*time.Minute, func() (bool, string) { return len(s.Jobs()) >= 1, "" })
			maxActive, created := 0, map[string]bool{}
			deadline := time.Now().Add(125 * time.Second)
			for time.Now().Before(deadline) {
				active := 0
				for _, j := range s.Jobs() {
					created[j.Name] = true
					if j.Status.CompletionTime == nil && !hasFinished(&j) && j.DeletionTimestamp == nil {
						active++
					}
				}
				maxActive = max(maxActive, active)
				s.Sleep(500 * time.Millisecond)
			}
			s.Note("most Jobs running at once", maxActive)
			switch policy {
			case batchv1.AllowConcurrent:
				s.Expect(maxActive >= 2, "Allow: at most %d Jobs ran at once, want overlap", maxActive)
			case batchv1.ForbidConcurrent:
				s.Expect(maxActive == 1, "Forbid: %d Jobs ran at once", maxActive)
				s.WaitFor("JobAlreadyActive", time.Minute, s.HasEvent("CronJob", "slow", "JobAlreadyActive"))
			case batchv1.ReplaceConcurrent:
				s.Expect(maxActive == 1, "Replace: %d Jobs ran at once", maxActive)
				s.Expect(len(created) >= 2, "Replace: only %d Jobs were created", len(created))
			}
		},
	}
}

func hasFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func failedReason(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return c.Reason
		}
	}
	return ""
}

// daemonSetSettled: desired, current, ready, up-to-date and available all
// equal n, observed at the current generation.
func daemonSetSettled(s *h.S, name string, n int32) func() (bool, string) {
	return func() (bool, string) {
		ds := s.DaemonSet(name)
		st := ds.Status
		ok := st.ObservedGeneration == ds.Generation && st.DesiredNumberScheduled == n && st.CurrentNumberScheduled == n &&
			st.NumberReady == n && st.UpdatedNumberScheduled == n && st.NumberAvailable == n && st.NumberMisscheduled == 0
		return ok && len(s.Pods("app="+name)) == int(n), fmt.Sprintf("%+v\n%s", st, h.PodSummary(s.Pods("app="+name)))
	}
}

func claimsBound(s *h.S, selector string, names ...string) func() (bool, string) {
	return func() (bool, string) {
		l, err := s.Client.CoreV1().PersistentVolumeClaims(s.NS).List(s.Ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		bound := map[string]bool{}
		var seen []string
		for _, c := range l.Items {
			seen = append(seen, fmt.Sprintf("%s %s", c.Name, c.Status.Phase))
			bound[c.Name] = c.Status.Phase == corev1.ClaimBound
		}
		for _, n := range names {
			if !bound[n] {
				return false, strings.Join(seen, "\n")
			}
		}
		return len(l.Items) == len(names), strings.Join(seen, "\n")
	}
}

// claimVolumes maps each claim in the namespace to its bound volume.
func claimVolumes(s *h.S) map[string]string {
	l, err := s.Client.CoreV1().PersistentVolumeClaims(s.NS).List(s.Ctx, metav1.ListOptions{})
	if err != nil {
		s.Fatalf("listing claims: %v", err)
	}
	out := map[string]string{}
	for _, c := range l.Items {
		out[c.Name] = c.Spec.VolumeName
	}
	return out
}

func podClaim(p *corev1.Pod, volume string) string {
	for _, v := range p.Spec.Volumes {
		if v.Name == volume && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

package scenarios

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	h "quartet.dev/quartet/test/scenarios/harness"
)

// simJob is a Job whose pods run in the sim runtime (an image with no
// command). %s are: name, extra spec fields (two-space indent), template
// annotations (eight-space indent), pod spec fields (six-space indent).
const simJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: %s
spec:
%s  template:
    metadata:
      annotations:
%s    spec:
%s      containers:
        - name: work
          image: example.com/sim-worker
`

func simJobYAML(name, spec, annotations, podSpec string) string {
	if annotations == "" {
		annotations = "        quartet.dev/sim-note: none\n"
	}
	if !strings.Contains(podSpec, "restartPolicy") {
		podSpec = "      restartPolicy: Never\n" + podSpec
	}
	return fmt.Sprintf(simJob, name, spec, annotations, podSpec)
}

// exitsAfter is the template annotations of a sim pod that exits with code
// after seconds.
func exitsAfter(code int, seconds string) string {
	return fmt.Sprintf("        quartet.dev/sim-exit-code: %q\n        quartet.dev/sim-run-seconds: %q\n", fmt.Sprint(code), seconds)
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func conditionTypes(j *batchv1.Job) string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return strings.Join(out, " ")
}

// statusSettled: the Job's status has caught up with its pods' deletion
// and counting (the Job controllers write it within their batch period).
func statusSettled(j *batchv1.Job) bool {
	u := j.Status.UncountedTerminatedPods
	return (j.Status.Terminating == nil || *j.Status.Terminating == 0) && (u == nil || len(u.Succeeded)+len(u.Failed) == 0)
}

// defaultServiceAccount waits until a new namespace can run pods: the
// service account controller creates "default" shortly after the namespace,
// and a pod created before it is refused in either mode.
func defaultServiceAccount(s *h.S) {
	s.Eventually("the default service account", time.Minute, func() (bool, string) {
		_, err := s.Client.CoreV1().ServiceAccounts(s.NS).Get(s.Ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

// jobPodsReady is a WaitFor condition: n pods of the Job run and are ready,
// and the Job's status says so (the checkpoint then records settled state).
func jobPodsReady(s *h.S, job string, n int) func() (bool, string) {
	return func() (bool, string) {
		ok, seen := s.PodsReady("job-name="+job, n)()
		j := s.Job(job)
		ready := j.Status.Ready != nil && int(*j.Status.Ready) == n && int(j.Status.Active) == n
		return ok && ready, seen + fmt.Sprintf("%+v", j.Status)
	}
}

// jobEvent waits for the event a Job gets when it ends: it is recorded just
// after the status write, so a scenario that stopped at the condition could
// end before the event arrives.
func jobEvent(s *h.S, job, reason string) {
	s.Eventually(reason+" event", time.Minute, s.HasEvent("Job", job, reason))
}

// exitNow makes a running sim pod's containers exit with code at once.
func exitNow(s *h.S, pod string, code int) {
	c, zero := fmt.Sprint(code), "0"
	s.PatchPodAnnotations(pod, map[string]*string{h.AnnotationSimExitCode: &c, h.AnnotationSimRunSeconds: &zero})
}

// activePods counts pods neither finished nor being deleted.
func activePods(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n
}

// podsGone is a WaitFor condition: no pod of the Job is left running.
func podsSettled(s *h.S, selector string, active int) func() (bool, string) {
	return func() (bool, string) {
		pods := s.Pods(selector)
		deleting := 0
		for _, p := range pods {
			if p.DeletionTimestamp != nil {
				deleting++
			}
		}
		return activePods(pods) == active && deleting == 0, h.PodSummary(pods)
	}
}

var _ = h.Register(
	h.Scenario{
		Name:        "job/parallel-completions",
		Controllers: []h.Controller{h.Job},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("batch", "  completions: 5\n  parallelism: 2\n", exitsAfter(0, "1"), ""))
			s.Eventually("two pods running", time.Minute, func() (bool, string) {
				pods := s.Pods("job-name=batch")
				return activePods(pods) == 2, h.PodSummary(pods)
			})
			s.Never("more than two pods at once", 3*time.Second, func() (bool, string) {
				pods := s.Pods("job-name=batch")
				return activePods(pods) > 2, h.PodSummary(pods)
			})
			s.WaitFor("Complete", 2*time.Minute, s.JobHasCondition("batch", batchv1.JobComplete))
			jobEvent(s, "batch", "Completed")
			j := s.Job("batch")
			pods := s.Pods("job-name=batch")
			s.Expect(len(pods) == 5 && j.Status.Succeeded == 5, "pods %d succeeded %d", len(pods), j.Status.Succeeded)
			out := s.Kubectl("", "get", "job", "batch", "--no-headers")
			s.Expect(strings.Contains(out, "5/5"), "kubectl get job: %s", out)
			s.Expect(j.Status.CompletionTime != nil && j.Status.StartTime != nil && !j.Status.CompletionTime.Before(j.Status.StartTime),
				"start %v completion %v", j.Status.StartTime, j.Status.CompletionTime)
			s.Expect(conditionTypes(j) == "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached", "conditions %s", conditionTypes(j))
			for _, p := range pods {
				s.Expect(len(p.Finalizers) == 0, "pod %s keeps finalizers %v", p.Name, p.Finalizers)
			}
		},
	},
	h.Scenario{
		Name:        "job/pod-shape",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("shape", "  completions: 1\n", exitsAfter(0, "600"), ""))
			s.WaitFor("the pod runs and the Job counts it ready", time.Minute, jobPodsReady(s, "shape", 1))
			p := s.Pods("job-name=shape")[0]
			j := s.Job("shape")
			s.Expect(strings.HasPrefix(p.Name, "shape-"), "pod name %s", p.Name)
			for _, key := range []string{batchv1.JobNameLabel, "job-name"} {
				s.Expect(p.Labels[key] == "shape", "label %s=%q", key, p.Labels[key])
			}
			for _, key := range []string{batchv1.ControllerUidLabel, "controller-uid"} {
				s.Expect(p.Labels[key] == string(j.UID), "label %s=%q", key, p.Labels[key])
			}
			ref := metav1.GetControllerOf(&p)
			s.Expect(ref != nil && ref.Kind == "Job" && ref.UID == j.UID && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion,
				"owner %+v", ref)
			s.Expect(len(p.Finalizers) == 1 && p.Finalizers[0] == batchv1.JobTrackingFinalizer, "finalizers %v", p.Finalizers)
			s.Expect(j.Status.Active == 1 && j.Status.Ready != nil && *j.Status.Ready == 1, "status %+v", j.Status)
		},
	},
	h.Scenario{
		Name:        "job/work-queue",
		Controllers: []h.Controller{h.Job},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("queue", "  parallelism: 3\n", exitsAfter(0, "2"), ""))
			s.WaitFor("Complete", 2*time.Minute, s.JobHasCondition("queue", batchv1.JobComplete))
			jobEvent(s, "queue", "Completed")
			j := s.Job("queue")
			s.Expect(j.Spec.Completions == nil, "completions %v", j.Spec.Completions)
			s.Expect(j.Status.Succeeded == 3 && len(s.Pods("job-name=queue")) == 3, "succeeded %d", j.Status.Succeeded)
		},
	},
	h.Scenario{
		Name:        "job/onfailure-restarts-count",
		Controllers: []h.Controller{h.Job},
		Timeout:     4 * time.Minute,
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			// One pod; its container restarts in place and each restart is a
			// retry toward backoffLimit.
			s.Apply(simJobYAML("flaky", "  backoffLimit: 2\n", exitsAfter(1, "0"), "      restartPolicy: OnFailure\n"))
			s.WaitFor("Failed", 3*time.Minute, s.JobHasCondition("flaky", batchv1.JobFailed))
			jobEvent(s, "flaky", "BackoffLimitExceeded")
			j := s.Job("flaky")
			s.Expect(failedReason(j) == batchv1.JobReasonBackoffLimitExceeded, "reason %q", failedReason(j))
			s.Expect(len(s.Pods("job-name=flaky")) <= 1, "pods %s", h.PodSummary(s.Pods("job-name=flaky")))
			s.Eventually("the pod is stopped", time.Minute, podsSettled(s, "job-name=flaky", 0))
		},
	},
	h.Scenario{
		Name:        "job/active-deadline",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("slow", "  completions: 2\n  parallelism: 2\n  activeDeadlineSeconds: 8\n", exitsAfter(0, "600"), ""))
			// The deadline races this wait (on a loaded machine it can fire
			// before both pods are Ready), so it records no checkpoint and
			// settles for both pods created.
			s.Eventually("two pods created", time.Minute, func() (bool, string) {
				pods := s.Pods("job-name=slow")
				failed, _ := s.JobHasCondition("slow", batchv1.JobFailed)()
				return len(pods) == 2 || failed, h.PodSummary(pods)
			})
			s.WaitFor("Failed", time.Minute, s.JobHasCondition("slow", batchv1.JobFailed))
			jobEvent(s, "slow", "DeadlineExceeded")
			j := s.Job("slow")
			s.Expect(failedReason(j) == batchv1.JobReasonDeadlineExceeded, "reason %q", failedReason(j))
			ft := jobCondition(j, batchv1.JobFailureTarget)
			s.Expect(ft != nil && ft.Reason == batchv1.JobReasonDeadlineExceeded, "conditions %s", conditionTypes(j))
			s.Expect(j.Status.Active == 0 && j.Status.Failed == 2, "active %d failed %d", j.Status.Active, j.Status.Failed)
			s.WaitFor("pods stopped", time.Minute, podsSettled(s, "job-name=slow", 0))
		},
	},
	h.Scenario{
		Name:        "job/indexed",
		Controllers: []h.Controller{h.Job},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			// A real process prints the index it was given.
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: indexed
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: busybox
          command: ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX"]
`)
			s.WaitFor("Complete", 2*time.Minute, s.JobHasCondition("indexed", batchv1.JobComplete))
			jobEvent(s, "indexed", "Completed")
			j := s.Job("indexed")
			s.Expect(j.Status.CompletedIndexes == "0-2" && j.Status.Succeeded == 3, "completedIndexes %q succeeded %d", j.Status.CompletedIndexes, j.Status.Succeeded)
			pods := s.Pods("job-name=indexed")
			s.Expect(len(pods) == 3, "pods %s", h.PodSummary(pods))
			seen := map[string]bool{}
			for _, p := range pods {
				ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
				seen[ix] = true
				s.Expect(p.Labels[batchv1.JobCompletionIndexAnnotation] == ix, "pod %s label %q annotation %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], ix)
				s.Expect(p.Spec.Hostname == "indexed-"+ix, "pod %s hostname %q", p.Name, p.Spec.Hostname)
				s.Expect(strings.HasPrefix(p.Name, "indexed-"+ix+"-"), "pod name %s for index %s", p.Name, ix)
				out := s.Kubectl("", "logs", p.Name)
				s.Expect(strings.TrimSpace(out) == "index="+ix, "pod %s logs %q", p.Name, out)
				env := p.Spec.Containers[0].Env
				s.Expect(len(env) == 1 && env[0].Name == "JOB_COMPLETION_INDEX" && env[0].ValueFrom != nil && env[0].ValueFrom.FieldRef != nil &&
					env[0].ValueFrom.FieldRef.FieldPath == "metadata.labels['batch.kubernetes.io/job-completion-index']", "pod %s env %+v", p.Name, env)
			}
			s.Expect(seen["0"] && seen["1"] && seen["2"], "indexes %v", seen)
		},
	},
	h.Scenario{
		Name:        "job/indexed-elastic",
		Controllers: []h.Controller{h.Job},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("elastic", "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n", exitsAfter(0, "600"), ""))
			s.WaitFor("three indexes run", time.Minute, jobPodsReady(s, "elastic", 3))
			s.Kubectl("", "patch", "job", "elastic", "--type=merge", "-p", `{"spec":{"completions":1,"parallelism":1}}`)
			s.WaitFor("one index left", time.Minute, podsSettled(s, "job-name=elastic", 1))
			pods := s.Pods("job-name=elastic")
			var left corev1.Pod
			for _, p := range pods {
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
					left = p
				}
			}
			s.Expect(left.Annotations[batchv1.JobCompletionIndexAnnotation] == "0", "the pod left is index %q", left.Annotations[batchv1.JobCompletionIndexAnnotation])
			exitNow(s, left.Name, 0)
			s.WaitFor("Complete", time.Minute, s.JobHasCondition("elastic", batchv1.JobComplete))
			jobEvent(s, "elastic", "Completed")
			j := s.Job("elastic")
			s.Expect(j.Status.CompletedIndexes == "0" && j.Status.Succeeded == 1, "completedIndexes %q succeeded %d", j.Status.CompletedIndexes, j.Status.Succeeded)
		},
	},
	h.Scenario{
		Name:        "job/suspend-resume",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("paused", "  completions: 2\n  parallelism: 2\n  suspend: true\n", exitsAfter(0, "600"), ""))
			s.WaitFor("Suspended", time.Minute, s.JobHasCondition("paused", batchv1.JobSuspended))
			s.Never("a pod of the suspended Job", 3*time.Second, func() (bool, string) {
				pods := s.Pods("job-name=paused")
				return len(pods) > 0, h.PodSummary(pods)
			})
			s.Expect(s.Job("paused").Status.StartTime == nil, "startTime set while suspended")

			s.Kubectl("", "patch", "job", "paused", "--type=merge", "-p", `{"spec":{"suspend":false}}`)
			s.WaitFor("resumed: two pods run", time.Minute, jobPodsReady(s, "paused", 2))
			j := s.Job("paused")
			c := jobCondition(j, batchv1.JobSuspended)
			s.Expect(c != nil && c.Status == corev1.ConditionFalse && c.Reason == "JobResumed", "conditions %s", conditionTypes(j))
			s.Expect(j.Status.StartTime != nil, "no startTime after resuming")

			s.Kubectl("", "patch", "job", "paused", "--type=merge", "-p", `{"spec":{"suspend":true}}`)
			s.WaitFor("suspended again: pods deleted", time.Minute, func() (bool, string) {
				pods := s.Pods("job-name=paused")
				j := s.Job("paused")
				c := jobCondition(j, batchv1.JobSuspended)
				return len(pods) == 0 && c != nil && c.Status == corev1.ConditionTrue && statusSettled(j),
					h.PodSummary(pods) + conditionTypes(j) + fmt.Sprintf(" %+v", j.Status)
			})
			j = s.Job("paused")
			s.Expect(j.Status.StartTime == nil && j.Status.Failed == 0, "startTime %v failed %d", j.Status.StartTime, j.Status.Failed)
			s.Eventually("Suspended and Resumed events", time.Minute, s.HasEvent("Job", "paused", "Resumed"))
		},
	},
	h.Scenario{
		Name:        "job/pod-failure-policy-fail-job",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("strict", `  completions: 3
  parallelism: 1
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes:
          containerName: work
          operator: In
          values: [42]
`, exitsAfter(42, "1"), ""))
			s.WaitFor("Failed", 2*time.Minute, s.JobHasCondition("strict", batchv1.JobFailed))
			jobEvent(s, "strict", "PodFailurePolicy")
			j := s.Job("strict")
			s.Expect(failedReason(j) == batchv1.JobReasonPodFailurePolicy, "reason %q", failedReason(j))
			c := jobCondition(j, batchv1.JobFailed)
			s.Expect(c != nil && strings.Contains(c.Message, "failed with exit code 42 matching FailJob rule at index 0"), "message %+v", c)
			s.Expect(j.Status.Failed == 1 && len(s.Pods("job-name=strict")) == 1, "failed %d", j.Status.Failed)
		},
	},
	h.Scenario{
		Name:        "job/pod-failure-policy-ignore-and-count",
		Controllers: []h.Controller{h.Job},
		Timeout:     4 * time.Minute,
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			// Exit code 3 is ignored: not counted, and the pod is replaced;
			// any other failure counts and backoffLimit 0 ends the Job.
			s.Apply(simJobYAML("lenient", `  backoffLimit: 0
  podFailurePolicy:
    rules:
      - action: Ignore
        onExitCodes:
          operator: In
          values: [3]
      - action: Count
        onPodConditions:
          - type: DisruptionTarget
`, exitsAfter(0, "600"), ""))
			s.WaitFor("the pod runs", time.Minute, jobPodsReady(s, "lenient", 1))
			first := s.Pods("job-name=lenient")[0].Name
			exitNow(s, first, 3)
			s.WaitFor("an ignored failure, replaced", 2*time.Minute, func() (bool, string) {
				pods := s.Pods("job-name=lenient")
				j := s.Job("lenient")
				counted := j.Status.Ready != nil && *j.Status.Ready == 1 && j.Status.Active == 1 && statusSettled(j)
				return len(pods) == 2 && activePods(pods) == 1 && counted, h.PodSummary(pods) + fmt.Sprintf("%+v", j.Status)
			})
			s.Expect(s.Job("lenient").Status.Failed == 0, "ignored failure counted")
			for _, p := range s.Pods("job-name=lenient") {
				if p.Name != first {
					exitNow(s, p.Name, 1)
				}
			}
			s.WaitFor("Failed", time.Minute, s.JobHasCondition("lenient", batchv1.JobFailed))
			jobEvent(s, "lenient", "BackoffLimitExceeded")
			j := s.Job("lenient")
			s.Expect(failedReason(j) == batchv1.JobReasonBackoffLimitExceeded && j.Status.Failed == 1, "reason %q failed %d", failedReason(j), j.Status.Failed)
		},
	},
	h.Scenario{
		Name:        "job/backoff-limit-per-index",
		Controllers: []h.Controller{h.Job},
		Timeout:     4 * time.Minute,
		// Indexes are created in parallel batches, in no fixed order.
		Unordered: []string{"Pod"},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			// Index 1 always fails; with one retry per index it fails twice and
			// the Job fails with the index marked, the others complete.
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: per-index
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  backoffLimitPerIndex: 1
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: busybox
          command: ["sh", "-c", "test \"$JOB_COMPLETION_INDEX\" != 1"]
`)
			s.WaitFor("Failed", 3*time.Minute, s.JobHasCondition("per-index", batchv1.JobFailed))
			jobEvent(s, "per-index", "FailedIndexes")
			j := s.Job("per-index")
			s.Expect(failedReason(j) == batchv1.JobReasonFailedIndexes, "reason %q", failedReason(j))
			s.Expect(j.Status.FailedIndexes != nil && *j.Status.FailedIndexes == "1" && j.Status.CompletedIndexes == "0,2",
				"failedIndexes %v completedIndexes %q", j.Status.FailedIndexes, j.Status.CompletedIndexes)
			var counts []string
			for _, p := range s.Pods("job-name=per-index,batch.kubernetes.io/job-completion-index=1") {
				counts = append(counts, p.Annotations[batchv1.JobIndexFailureCountAnnotation])
			}
			sort.Strings(counts)
			s.Note("failure counts of index 1", strings.Join(counts, ","))
			s.Expect(strings.Join(counts, ",") == "0,1", "failure counts of index 1: %v", counts)
			s.Expect(len(counts) == 2, "index 1 pods: %v", counts)
		},
	},
	h.Scenario{
		Name:        "job/success-policy",
		Controllers: []h.Controller{h.Job},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: leader
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  successPolicy:
    rules:
      - succeededIndexes: "0"
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: busybox
          command: ["sh", "-c", "if [ \"$JOB_COMPLETION_INDEX\" = 0 ]; then sleep 2; exit 0; fi; sleep 600"]
`)
			s.WaitFor("Complete", 2*time.Minute, s.JobHasCondition("leader", batchv1.JobComplete))
			jobEvent(s, "leader", "Completed")
			j := s.Job("leader")
			s.Expect(conditionTypes(j) == "SuccessCriteriaMet=True/SuccessPolicy Complete=True/SuccessPolicy", "conditions %s", conditionTypes(j))
			s.Expect(j.Status.CompletedIndexes == "0" && j.Status.Succeeded == 1 && j.Status.Failed == 0,
				"completedIndexes %q succeeded %d failed %d", j.Status.CompletedIndexes, j.Status.Succeeded, j.Status.Failed)
			s.Eventually("the other indexes stopped", time.Minute, podsSettled(s, "job-name=leader", 0))
		},
	},
	h.Scenario{
		Name:        "job/managed-by-another-controller",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("foreign", "  managedBy: example.com/batch-controller\n", exitsAfter(0, "1"), ""))
			s.Never("a pod of a Job managed elsewhere", 5*time.Second, func() (bool, string) {
				pods := s.Pods("job-name=foreign")
				return len(pods) > 0, h.PodSummary(pods)
			})
			j := s.Job("foreign")
			s.Expect(j.Status.StartTime == nil && len(j.Status.Conditions) == 0 && j.Status.Active == 0, "status %+v", j.Status)
		},
	},
	h.Scenario{
		Name:        "job/adopts-matching-orphan",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(`apiVersion: v1
kind: Pod
metadata:
  name: early
  labels:
    app: adopt-me
  annotations:
    quartet.dev/sim-exit-code: "0"
    quartet.dev/sim-run-seconds: "600"
spec:
  restartPolicy: Never
  containers:
    - name: work
      image: example.com/sim-worker
`)
			s.WaitFor("the orphan runs", time.Minute, s.PodsReady("app=adopt-me", 1))
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: adopter
spec:
  completions: 1
  manualSelector: true
  selector:
    matchLabels:
      app: adopt-me
  template:
    metadata:
      labels:
        app: adopt-me
      annotations:
        quartet.dev/sim-exit-code: "0"
        quartet.dev/sim-run-seconds: "600"
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: example.com/sim-worker
`)
			s.WaitFor("adopted", time.Minute, func() (bool, string) {
				p, _ := s.Pod("early")
				ref := metav1.GetControllerOf(&p)
				return ref != nil && ref.Name == "adopter", fmt.Sprintf("owners %v finalizers %v", p.OwnerReferences, p.Finalizers)
			})
			p, _ := s.Pod("early")
			s.Expect(len(p.Finalizers) == 1 && p.Finalizers[0] == batchv1.JobTrackingFinalizer, "finalizers %v", p.Finalizers)
			s.Never("a second pod", 3*time.Second, func() (bool, string) {
				pods := s.Pods("app=adopt-me")
				return len(pods) > 1, h.PodSummary(pods)
			})
			exitNow(s, "early", 0)
			s.WaitFor("Complete", time.Minute, s.JobHasCondition("adopter", batchv1.JobComplete))
			jobEvent(s, "adopter", "Completed")
		},
	},
	h.Scenario{
		Name:        "job/ttl-after-finished",
		Controllers: []h.Controller{h.Job, h.TTLAfterFinished},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(simJobYAML("short-lived", "  ttlSecondsAfterFinished: 10\n", exitsAfter(0, "1"), ""))
			var completed *metav1.Time
			s.WaitFor("Complete", time.Minute, func() (bool, string) {
				j := s.Job("short-lived")
				completed = j.Status.CompletionTime
				return completed != nil, conditionTypes(j)
			})
			s.Eventually("the Job and its pod deleted", time.Minute, func() (bool, string) {
				_, err := s.Client.BatchV1().Jobs(s.NS).Get(s.Ctx, "short-lived", metav1.GetOptions{})
				pods := s.Pods("job-name=short-lived")
				return err != nil && len(pods) == 0, fmt.Sprintf("job err %v\n%s", err, h.PodSummary(pods))
			})
			// completionTime has whole seconds: allow one.
			s.Expect(time.Since(completed.Time) >= 9*time.Second, "deleted %v after Complete, before its TTL", time.Since(completed.Time))
		},
	},
	h.Scenario{
		Name:        "job/retry-delay-annotations",
		Controllers: []h.Controller{h.Job},
		Timeout:     5 * time.Minute,
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			// quartet extension (docs/job.md): a 1s retry delay instead of
			// 10s, 20s, 40s. Upstream ignores the annotations; the outcome is
			// the same, only sooner in quartet.
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: quick-retry
  annotations:
    quartet.dev/backoff-base: "1s"
    quartet.dev/backoff-max: "1s"
spec:
  backoffLimit: 3
  template:
    metadata:
      annotations:
        quartet.dev/sim-exit-code: "1"
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: example.com/sim-worker
`)
			start := time.Now()
			s.WaitFor("Failed", 4*time.Minute, s.JobHasCondition("quick-retry", batchv1.JobFailed))
			took := time.Since(start)
			jobEvent(s, "quick-retry", "BackoffLimitExceeded")
			j := s.Job("quick-retry")
			s.Expect(failedReason(j) == batchv1.JobReasonBackoffLimitExceeded && j.Status.Failed == 4, "reason %q failed %d", failedReason(j), j.Status.Failed)
			pods := s.Pods("job-name=quick-retry")
			s.Expect(len(pods) == 4, "pods %s", h.PodSummary(pods))
			// The delay is what each retry waited: from a pod's container
			// exit to the next pod's creation. Measured on the pods, it does
			// not count how long pods take to start on a busy cluster.
			gaps := retryGaps(pods)
			if s.Mode.QuartetControllers() {
				// 1 s delays (and a controller's sync) stay below upstream's
				// first delay of 10 s.
				s.Expect(len(gaps) == 3 && slices.Max(gaps) < 10*time.Second, "quartet's retries waited %v (took %v); 1s delays should stay below upstream's 10s", gaps, took)
			} else {
				s.Expect(len(gaps) == 3 && slices.Min(gaps) >= 9*time.Second && took >= 60*time.Second, "upstream's retries waited %v (took %v); its delays are 10s, 20s, 40s", gaps, took)
			}
		},
	},
	h.Scenario{
		Name:        "job/retry-delay-invalid-annotation",
		Controllers: []h.Controller{h.Job},
		Run: func(s *h.S) {
			defaultServiceAccount(s)
			s.Apply(`apiVersion: batch/v1
kind: Job
metadata:
  name: bad-backoff
  annotations:
    quartet.dev/backoff-base: "fast"
spec:
  completions: 1
  template:
    metadata:
      annotations:
        quartet.dev/sim-exit-code: "0"
        quartet.dev/sim-run-seconds: "1"
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: example.com/sim-worker
`)
			s.WaitFor("Complete", time.Minute, s.JobHasCondition("bad-backoff", batchv1.JobComplete))
			jobEvent(s, "bad-backoff", "Completed")
			if s.Mode.QuartetControllers() {
				s.Eventually("the warning", time.Minute, s.HasEvent("Job", "bad-backoff", "InvalidBackoffAnnotation"))
			}
		},
	},
)

// retryGaps returns, for a Job's pods in creation order, how long each pod
// after the first was created after the previous one's container exited.
func retryGaps(pods []corev1.Pod) []time.Duration {
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	var gaps []time.Duration
	for i := 1; i < len(pods); i++ {
		prev := pods[i-1].Status.ContainerStatuses
		if len(prev) == 0 || prev[0].State.Terminated == nil {
			return nil
		}
		gaps = append(gaps, pods[i].CreationTimestamp.Sub(prev[0].State.Terminated.FinishedAt.Time))
	}
	return gaps
}

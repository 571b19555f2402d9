package scenarios

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	h "quartet.dev/quartet/test/scenarios/harness"
)

// cronJobEveryMinute is a */1 CronJob whose Jobs finish after a second;
// %s is extra spec fields, indented by two spaces.
const cronJobEveryMinute = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: %s
spec:
  schedule: "*/1 * * * *"
%s  jobTemplate:
    metadata:
      labels:
        team: ops
      annotations:
        owner: alice
    spec:
      backoffLimit: 0
      template:
        metadata:
          annotations:
            quartet.dev/sim-run-seconds: "1"
            quartet.dev/sim-exit-code: "%d"
        spec:
          restartPolicy: Never
          containers:
            - name: tick
              image: example.com/tick:1
`

var jobNameOfCronJob = regexp.MustCompile(`^tick-([0-9]+)$`)

var _ = h.Register(
	h.Scenario{
		Name:        "cronjob/job-shape-and-status",
		Controllers: []h.Controller{h.CronJob, h.Job},
		Timeout:     4 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(fmt.Sprintf(cronJobEveryMinute, "tick", "  timeZone: Asia/Seoul\n  startingDeadlineSeconds: 30\n  concurrencyPolicy: Forbid\n", 0))
			// No checkpoint here: the Job may be anywhere in its one-second
			// run; the next wait checkpoints the settled state.
			s.Eventually("the first scheduled Job", 2*time.Minute, func() (bool, string) { return len(s.Jobs()) >= 1, "" })
			job := s.Jobs()[0]

			// Name: <cronjob>-<scheduled time in minutes since the epoch>,
			// and the annotation is that time in the CronJob's zone.
			m := jobNameOfCronJob.FindStringSubmatch(job.Name)
			s.Expect(m != nil, "job name %q is not tick-<minutes>", job.Name)
			stamp := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]
			scheduled, err := time.Parse(time.RFC3339, stamp)
			s.Expect(err == nil && strings.HasSuffix(stamp, "+09:00"), "scheduled-timestamp %q is not RFC 3339 in Asia/Seoul", stamp)
			if m != nil && err == nil {
				minutes, _ := strconv.ParseInt(m[1], 10, 64)
				s.Expect(minutes == scheduled.Unix()/60, "name %s vs annotation %s", job.Name, stamp)
			}
			s.Expect(job.Labels["team"] == "ops" && job.Annotations["owner"] == "alice", "template metadata not copied: %v %v", job.Labels, job.Annotations)
			ref := metav1.GetControllerOf(&job)
			s.Expect(ref != nil && ref.Kind == "CronJob" && ref.Name == "tick" && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion,
				"controller reference %+v", ref)

			s.WaitFor("the Job succeeded and the status says so", 2*time.Minute, func() (bool, string) {
				cj := s.CronJob("tick")
				st := cj.Status
				ok := st.LastSuccessfulTime != nil && st.LastScheduleTime != nil && len(st.Active) == 0
				return ok, fmt.Sprintf("%+v", st)
			})
			last := s.CronJob("tick").Status.LastScheduleTime
			s.Expect(last != nil && !last.Time.Before(scheduled), "lastScheduleTime %v before the first Job's time %v", last, scheduled)

			out := s.Kubectl("", "get", "cronjob", "tick")
			s.Expect(strings.Contains(out, "TIMEZONE") && strings.Contains(out, "SUSPEND") && strings.Contains(out, "LAST SCHEDULE") &&
				strings.Contains(out, "Asia/Seoul") && strings.Contains(out, "False"), "kubectl get cronjob:\n%s", out)
			s.WaitFor("SuccessfulCreate", time.Minute, s.HasEvent("CronJob", "tick", "SuccessfulCreate"))
			s.WaitFor("SawCompletedJob", time.Minute, s.HasEvent("CronJob", "tick", "SawCompletedJob"))
		},
	},
	h.Scenario{
		Name:        "cronjob/history-limits",
		Controllers: []h.Controller{h.CronJob, h.Job},
		Timeout:     5 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(fmt.Sprintf(cronJobEveryMinute, "keep-one", "  successfulJobsHistoryLimit: 1\n  failedJobsHistoryLimit: 1\n", 0))
			// The second run's Job succeeds, then the first is pruned.
			s.WaitFor("the oldest Job pruned", 4*time.Minute, s.HasEvent("CronJob", "keep-one", "SuccessfulDelete"))
			s.Eventually("one succeeded Job kept", time.Minute, func() (bool, string) {
				succeeded := 0
				var names []string
				for _, j := range s.Jobs() {
					names = append(names, j.Name)
					if hasCondition(&j, batchv1.JobComplete) {
						succeeded++
					}
				}
				return succeeded == 1, strings.Join(names, " ")
			})
		},
	},
	h.Scenario{
		Name:        "cronjob/failed-history",
		Controllers: []h.Controller{h.CronJob, h.Job},
		Timeout:     7 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(fmt.Sprintf(cronJobEveryMinute, "fails", "  failedJobsHistoryLimit: 1\n", 1))
			s.WaitFor("a failed Job pruned", 4*time.Minute, s.HasEvent("CronJob", "fails", "SuccessfulDelete"))
			s.Eventually("one failed Job kept", time.Minute, func() (bool, string) {
				failed := 0
				for _, j := range s.Jobs() {
					if hasCondition(&j, batchv1.JobFailed) {
						failed++
					}
				}
				return failed == 1, fmt.Sprint(failed)
			})
			cj := s.CronJob("fails")
			s.Expect(cj.Status.LastSuccessfulTime == nil, "lastSuccessfulTime %v after only failures", cj.Status.LastSuccessfulTime)
		},
	},
	h.Scenario{
		Name:        "cronjob/too-many-missed-times",
		Controllers: []h.Controller{h.CronJob, h.Job},
		Timeout:     3 * time.Minute,
		Run: func(s *h.S) {
			// Early in a minute: the whole run (about 35 s on a loaded
			// machine) stays inside it, so no ordinary run joins the trace.
			earlyInMinute(s, 10)
			s.Apply(fmt.Sprintf(cronJobEveryMinute, "behind", "  suspend: true\n", 0))
			// As after a three-hour outage: the last run is 180 minutes ago
			// and there is no startingDeadlineSeconds to bound the search.
			since := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Minute).Format(time.RFC3339)
			s.Kubectl("", "patch", "cronjob", "behind", "--subresource=status", "--type=merge",
				"-p", fmt.Sprintf(`{"status":{"lastScheduleTime":%q}}`, since))
			resumed := time.Now()
			s.Kubectl("", "patch", "cronjob", "behind", "--type=merge", "-p", `{"spec":{"suspend":false}}`)
			s.Eventually("TooManyMissedTimes", time.Minute, s.HasEvent("CronJob", "behind", "TooManyMissedTimes"))
			// Only the most recent missed time runs, not 180 Jobs.
			s.WaitFor("one Job, finished", time.Minute, func() (bool, string) {
				jobs := s.Jobs()
				return len(jobs) == 1 && hasCondition(&jobs[0], batchv1.JobComplete) && len(s.CronJob("behind").Status.Active) == 0, fmt.Sprint(len(jobs))
			})
			s.Sleep(2 * time.Second)
			missed := jobsScheduledBefore(s, resumed)
			s.Expect(missed == 1, "%d missed runs started after the outage, want 1", missed)
		},
	},
	h.Scenario{
		Name:        "cronjob/suspend-and-resume",
		Controllers: []h.Controller{h.CronJob, h.Job},
		Timeout:     5 * time.Minute,
		Run: func(s *h.S) {
			// Start early in a minute, so the resume and the 5 s after it fall
			// inside one minute in both modes and no ordinary run slips in.
			earlyInMinute(s, 30)
			s.Apply(fmt.Sprintf(cronJobEveryMinute, "paused", "  suspend: true\n", 0))
			s.Never("a Job while suspended", 65*time.Second, func() (bool, string) {
				jobs := s.Jobs()
				return len(jobs) > 0, fmt.Sprint(len(jobs))
			})
			resumed := time.Now()
			s.Kubectl("", "patch", "cronjob", "paused", "--type=merge", "-p", `{"spec":{"suspend":false}}`)
			// No deadline: the most recent missed minute starts at once, and
			// only that one; later minutes are ordinary runs.
			// Waiting for the Job to finish too makes the checkpoint the same
			// state in both modes, not wherever its one-second run had got to.
			s.WaitFor("a Job after resuming, finished", 30*time.Second, func() (bool, string) {
				jobs := s.Jobs()
				return len(jobs) >= 1 && hasCondition(&jobs[0], batchv1.JobComplete) && len(s.CronJob("paused").Status.Active) == 0, fmt.Sprint(len(jobs))
			})
			s.Sleep(3 * time.Second)
			missed := jobsScheduledBefore(s, resumed)
			s.Note("missed runs started on resume", missed)
			s.Expect(missed == 1, "%d missed runs started on resume, want 1", missed)
		},
	},
)

func hasCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == "True" {
			return true
		}
	}
	return false
}

// earlyInMinute sleeps until the wall clock is between second 2 and second
// latest of a minute.
func earlyInMinute(s *h.S, latest int) {
	if sec := time.Now().Second(); sec < 2 || sec > latest {
		s.Sleep(time.Duration((62-sec)%60) * time.Second)
	}
}

// jobsScheduledBefore counts the Jobs whose scheduled time (the CronJob's
// scheduled-timestamp annotation) is before t: the missed runs a resumed
// CronJob started.
func jobsScheduledBefore(s *h.S, t time.Time) int {
	n := 0
	for _, j := range s.Jobs() {
		at, err := time.Parse(time.RFC3339, j.Annotations[batchv1.CronJobScheduledTimestampAnnotation])
		if err == nil && at.Before(t) {
			n++
		}
	}
	return n
}

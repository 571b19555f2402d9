package job

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// running is the status of a Job with n active pods and nothing else.
func running(n, ready int32) statusView {
	return statusView{Active: n, Ready: ready, FailedIndexes: "<nil>", Started: true}
}

func TestPlan(t *testing.T) {
	exitIn := func(action batch.PodFailurePolicyAction, codes ...int32) batch.PodFailurePolicyRule {
		return batch.PodFailurePolicyRule{Action: action, OnExitCodes: &batch.PodFailurePolicyOnExitCodesRequirement{
			Operator: batch.PodFailurePolicyOnExitCodesOpIn, Values: codes,
		}}
	}
	onDisruption := func(action batch.PodFailurePolicyAction) batch.PodFailurePolicyRule {
		return batch.PodFailurePolicyRule{Action: action, OnPodConditions: []batch.PodFailurePolicyOnPodConditionsPattern{
			{Type: v1.DisruptionTarget, Status: v1.ConditionTrue},
		}}
	}
	type podsFn func(job *batch.Job) []*v1.Pod
	cases := map[string]struct {
		job           *batch.Job
		pods          podsFn
		unsettled     bool
		finalizerGone []string
		backoff       backoffRecord
		retry         *retryPolicy
		want          planView
	}{
		// Sizing the Job.
		"job start": {
			job:  newTestJob(5, 2),
			want: planView{Creates: "pod,pod", Interim: running(2, 0), Final: running(2, 0)},
		},
		"work queue start": {
			job:  newTestJob(-1, 3),
			want: planView{Creates: "pod,pod,pod", Interim: running(3, 0), Final: running(3, 0)},
		},
		"pending pods are active": {
			job: newTestJob(5, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "p1", v1.PodPending), newTestPod(j, "p2", v1.PodPending, unscheduled)}
			},
			want: planView{Interim: running(2, 0), Final: running(2, 0)},
		},
		"ready pods are counted": {
			job: newTestJob(5, 3),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, ready), newTestPod(j, "r2", v1.PodRunning, ready), newTestPod(j, "r3", v1.PodRunning)}
			},
			want: planView{Interim: running(3, 2), Final: running(3, 2)},
		},
		"parallelism zero creates nothing": {
			job:  newTestJob(5, 0),
			want: planView{Interim: running(0, 0), Final: running(0, 0)},
		},
		"a succeeded pod is replaced and counted": {
			job: newTestJob(5, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning), newTestPod(j, "s1", v1.PodSucceeded)}
			},
			want: planView{
				Creates:        "pod",
				Interim:        statusView{Active: 2, UncountedSucceeded: "s1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "s1",
				Final:          statusView{Active: 2, Succeeded: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"too many active pods: the unscheduled one goes": {
			job: newTestJob(5, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning), newTestPod(j, "r2", v1.PodRunning), newTestPod(j, "r3", v1.PodPending, unscheduled)}
			},
			want: planView{
				Deletes: "!r3",
				Interim: statusView{Active: 2, Terminating: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 2, Terminating: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"more active pods than remaining completions: not-ready goes first": {
			job: newTestJob(3, 3, withStatus(func(s *batch.JobStatus) { s.Succeeded = 2 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, ready), newTestPod(j, "r2", v1.PodRunning)}
			},
			want: planView{
				Deletes: "!r2",
				Interim: statusView{Active: 1, Ready: 1, Terminating: 1, Succeeded: 2, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 1, Ready: 1, Terminating: 1, Succeeded: 2, FailedIndexes: "<nil>", Started: true},
			},
		},
		"unsettled expectations: no pod writes": {
			job:       newTestJob(5, 2),
			unsettled: true,
			want:      planView{Interim: running(0, 0), Final: running(0, 0)},
		},
		"unsettled expectations still count finished pods": {
			job:       newTestJob(5, 2),
			unsettled: true,
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s1", v1.PodSucceeded)}
			},
			want: planView{
				Interim:        statusView{UncountedSucceeded: "s1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "s1",
				Final:          statusView{Succeeded: 1, FailedIndexes: "<nil>", Started: true},
			},
		},

		// Completion.
		"job finishes": {
			job: newTestJob(2, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s1", v1.PodSucceeded), newTestPod(j, "s2", v1.PodSucceeded)}
			},
			want: planView{
				Interim: statusView{UncountedSucceeded: "s1,s2", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached"},
				DropFinalizers: "s1,s2",
				Final: statusView{Succeeded: 2, FailedIndexes: "<nil>", Started: true, Completed: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached"},
				Finished: true,
				Events:   "Completed",
			},
		},
		"too many succeeded pods": {
			job: newTestJob(2, 2, withStatus(func(s *batch.JobStatus) { s.Succeeded = 2 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s3", v1.PodSucceeded)}
			},
			want: planView{
				Interim: statusView{Succeeded: 2, UncountedSucceeded: "s3", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached"},
				DropFinalizers: "s3",
				Final: statusView{Succeeded: 3, FailedIndexes: "<nil>", Started: true, Completed: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached"},
				Finished: true,
				Events:   "TooManySucceededPods,Completed",
			},
		},
		"zero completions complete at once, even suspended": {
			job: newTestJob(0, 1, suspended),
			want: planView{
				Interim: statusView{FailedIndexes: "<nil>", Conditions: "SuccessCriteriaMet=True/CompletionsReached"},
				Final: statusView{FailedIndexes: "<nil>", Completed: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached"},
				Finished: true,
				Events:   "Completed",
			},
		},
		"work queue: a success stops new pods, running ones finish": {
			job: newTestJob(-1, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s1", v1.PodSucceeded), newTestPod(j, "r1", v1.PodRunning)}
			},
			want: planView{
				Interim:        statusView{Active: 1, UncountedSucceeded: "s1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "s1",
				Final:          statusView{Active: 1, Succeeded: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"work queue: all finished despite a failure": {
			job: newTestJob(-1, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s1", v1.PodSucceeded), newTestPod(j, "f1", v1.PodFailed)}
			},
			want: planView{
				Interim: statusView{UncountedSucceeded: "s1", UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached"},
				DropFinalizers: "f1,s1",
				Final: statusView{Succeeded: 1, Failed: 1, FailedIndexes: "<nil>", Started: true, Completed: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached"},
				Finished: true,
				Events:   "Completed",
			},
		},

		// Retries and their delay.
		"a new failure waits for the retry delay": {
			job: newTestJob(5, 1),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed, finishedAt(ago(time.Second)))}
			},
			want: planView{
				Interim:        statusView{UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "f1",
				Final:          statusView{Failed: 1, FailedIndexes: "<nil>", Started: true},
				Requeue:        9 * time.Second,
			},
		},
		"the retry delay has passed": {
			job:     newTestJob(5, 1),
			backoff: backoffRecord{failures: 1, lastFailure: ago(11 * time.Second)},
			want:    planView{Creates: "pod", Interim: running(1, 0), Final: running(1, 0)},
		},
		"the retry delay doubles": {
			job:     newTestJob(5, 1),
			backoff: backoffRecord{failures: 3, lastFailure: ago(30 * time.Second)},
			want:    planView{Interim: running(0, 0), Final: running(0, 0), Requeue: 10 * time.Second},
		},
		"the retry delay is capped at ten minutes": {
			job:     newTestJob(5, 1),
			backoff: backoffRecord{failures: 20, lastFailure: ago(time.Minute)},
			want:    planView{Interim: running(0, 0), Final: running(0, 0), Requeue: 9 * time.Minute},
		},
		"a success resets the delay": {
			job:     newTestJob(5, 2),
			backoff: backoffRecord{failures: 5, lastFailure: ago(3 * time.Second)},
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "f1", v1.PodFailed, finishedAt(ago(2*time.Second))),
					newTestPod(j, "s1", v1.PodSucceeded, finishedAt(ago(time.Second))),
				}
			},
			want: planView{
				Creates:        "pod,pod",
				Interim:        statusView{Active: 2, UncountedSucceeded: "s1", UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "f1,s1",
				Final:          statusView{Active: 2, Succeeded: 1, Failed: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"a failure after the last success still waits": {
			job: newTestJob(5, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "s1", v1.PodSucceeded, finishedAt(ago(3*time.Second))),
					newTestPod(j, "f1", v1.PodFailed, finishedAt(ago(time.Second))),
				}
			},
			want: planView{
				Interim:        statusView{UncountedSucceeded: "s1", UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "f1,s1",
				Final:          statusView{Succeeded: 1, Failed: 1, FailedIndexes: "<nil>", Started: true},
				Requeue:        9 * time.Second,
			},
		},
		"quartet.dev/backoff-base shortens the delay": {
			job:   newTestJob(5, 1),
			retry: &retryPolicy{base: time.Second, max: 30 * time.Second},
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed, finishedAt(ago(300*time.Millisecond)))}
			},
			want: planView{
				Interim:        statusView{UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "f1",
				Final:          statusView{Failed: 1, FailedIndexes: "<nil>", Started: true},
				Requeue:        700 * time.Millisecond,
			},
		},

		// Failing.
		"backoff limit exceeded: running pods are stopped and counted failed": {
			job: newTestJob(5, 2, backoffLimit(1), withStatus(func(s *batch.JobStatus) { s.Failed = 1 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f2", v1.PodFailed), newTestPod(j, "r1", v1.PodRunning, ready)}
			},
			want: planView{
				Deletes: "r1",
				Interim: statusView{Terminating: 1, Failed: 1, UncountedFailed: "f2,r1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
				DropFinalizers: "f2,r1",
				Final: statusView{Terminating: 1, Failed: 3, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
			},
		},
		"failures equal to the backoff limit still retry": {
			job: newTestJob(1, 1, backoffLimit(2), withStatus(func(s *batch.JobStatus) { s.Failed = 1 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f2", v1.PodFailed, finishedAt(ago(5*time.Second)))}
			},
			backoff: backoffRecord{failures: 1, lastFailure: ago(30 * time.Second)},
			want: planView{
				Interim:        statusView{Failed: 1, UncountedFailed: "f2", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "f2",
				Final:          statusView{Failed: 2, FailedIndexes: "<nil>", Started: true},
				// The second failure in a row waits 20s from its finish.
				Requeue: 15 * time.Second,
			},
		},
		"backoff limit exceeded with nothing running fails at once": {
			job: newTestJob(5, 1, backoffLimit(0)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed)}
			},
			want: planView{
				Interim: statusView{UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
				DropFinalizers: "f1",
				Final: statusView{Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded Failed=True/BackoffLimitExceeded"},
				Finished: true,
				Events:   "BackoffLimitExceeded",
			},
		},
		"OnFailure: container restarts reach the backoff limit": {
			job: newTestJob(1, 1, onFailure, backoffLimit(2)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, restartCount(2))}
			},
			want: planView{
				Deletes: "r1",
				Interim: statusView{Terminating: 1, UncountedFailed: "r1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
				DropFinalizers: "r1",
				Final: statusView{Terminating: 1, Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
			},
		},
		"OnFailure: backoffLimit 0 fails on the first restart": {
			job: newTestJob(1, 1, onFailure, backoffLimit(0)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, restartCount(1))}
			},
			want: planView{
				Deletes: "r1",
				Interim: statusView{Terminating: 1, UncountedFailed: "r1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
				DropFinalizers: "r1",
				Final: statusView{Terminating: 1, Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
			},
		},
		"OnFailure: restarts below the limit keep running": {
			job: newTestJob(1, 1, onFailure, backoffLimit(2)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, restartCount(1))}
			},
			want: planView{Interim: running(1, 0), Final: running(1, 0)},
		},
		"a recorded FailureTarget becomes Failed once pods are gone": {
			job: newTestJob(5, 1, startedAt(ago(time.Minute)), withCondition(batch.JobFailureTarget, batch.JobReasonBackoffLimitExceeded, msgBackoffLimit)),
			want: planView{
				Interim: statusView{FailedIndexes: "<nil>", Started: true, Conditions: "FailureTarget=True/BackoffLimitExceeded"},
				Final: statusView{FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded Failed=True/BackoffLimitExceeded"},
				Finished: true,
				Events:   "BackoffLimitExceeded",
			},
		},
		"a recorded FailureTarget waits for terminating pods": {
			job: newTestJob(5, 1, startedAt(ago(time.Minute)), withCondition(batch.JobFailureTarget, batch.JobReasonDeadlineExceeded, msgDeadline)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "t1", v1.PodRunning, beingDeleted)}
			},
			want: planView{
				Interim: statusView{Terminating: 1, UncountedFailed: "t1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/DeadlineExceeded"},
				DropFinalizers: "t1",
				Final: statusView{Terminating: 1, Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/DeadlineExceeded"},
			},
		},
		"active deadline exceeded": {
			job: newTestJob(1, 1, deadline(10), startedAt(ago(10*time.Second))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning)}
			},
			want: planView{
				Deletes: "r1",
				Interim: statusView{Terminating: 1, UncountedFailed: "r1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/DeadlineExceeded"},
				DropFinalizers: "r1",
				Final: statusView{Terminating: 1, Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/DeadlineExceeded"},
			},
		},
		"active deadline ahead: look again then": {
			job: newTestJob(1, 1, deadline(30), startedAt(ago(10*time.Second))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning)}
			},
			want: planView{Interim: running(1, 0), Final: running(1, 0), Requeue: 20 * time.Second},
		},
		"a suspended Job's deadline does not run": {
			job:  newTestJob(1, 1, deadline(10), suspended, withCondition(batch.JobSuspended, reasonJobSuspended, msgJobSuspended)),
			want: planView{Interim: statusView{FailedIndexes: "<nil>", Conditions: "Suspended=True/JobSuspended"}, Final: statusView{FailedIndexes: "<nil>", Conditions: "Suspended=True/JobSuspended"}},
		},

		// Suspend and resume.
		"suspending deletes active pods": {
			job: newTestJob(5, 2, suspended, startedAt(ago(time.Minute))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, ready), newTestPod(j, "r2", v1.PodRunning)}
			},
			want: planView{
				Deletes: "!r2,!r1",
				Interim: statusView{Terminating: 2, FailedIndexes: "<nil>", Conditions: "Suspended=True/JobSuspended"},
				Final:   statusView{Terminating: 2, FailedIndexes: "<nil>", Conditions: "Suspended=True/JobSuspended"},
				Events:  "Suspended",
			},
		},
		"created suspended": {
			job: newTestJob(5, 2, suspended),
			want: planView{
				Interim: statusView{FailedIndexes: "<nil>", Conditions: "Suspended=True/JobSuspended"},
				Final:   statusView{FailedIndexes: "<nil>", Conditions: "Suspended=True/JobSuspended"},
				Events:  "Suspended",
			},
		},
		"resuming": {
			job: newTestJob(5, 2, withCondition(batch.JobSuspended, reasonJobSuspended, msgJobSuspended)),
			want: planView{
				Creates: "pod,pod",
				Interim: statusView{Active: 2, FailedIndexes: "<nil>", Started: true, Conditions: "Suspended=False/JobResumed"},
				Final:   statusView{Active: 2, FailedIndexes: "<nil>", Started: true, Conditions: "Suspended=False/JobResumed"},
				Events:  "Resumed",
			},
		},
		"suspending with unsettled expectations waits": {
			job:       newTestJob(5, 2, suspended, startedAt(ago(time.Minute))),
			unsettled: true,
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning)}
			},
			want: planView{Interim: running(1, 0), Final: running(1, 0)},
		},
		"a Job being deleted lets go of its pods": {
			job: newTestJob(5, 2, func(j *batch.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(testNow)) }),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning), newTestPod(j, "s1", v1.PodSucceeded)}
			},
			want: planView{
				Interim:        statusView{Active: 1, UncountedSucceeded: "s1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "r1,s1",
				Final:          statusView{Active: 1, Succeeded: 1, FailedIndexes: "<nil>", Started: true},
			},
		},

		// podReplacementPolicy.
		"TerminatingOrFailed: a terminating pod counts as failed and is replaced": {
			job: newTestJob(5, 2),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning), newTestPod(j, "t1", v1.PodRunning, beingDeleted)}
			},
			want: planView{
				Creates:        "pod",
				Interim:        statusView{Active: 2, Terminating: 1, UncountedFailed: "t1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "t1",
				Final:          statusView{Active: 2, Terminating: 1, Failed: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"Failed: a terminating pod keeps its slot": {
			job: newTestJob(5, 2, replaceFailedOnly),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning), newTestPod(j, "t1", v1.PodRunning, beingDeleted)}
			},
			want: planView{
				Interim: statusView{Active: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"Failed: more terminating pods than parallelism": {
			job: newTestJob(5, 2, replaceFailedOnly),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "t1", v1.PodRunning, beingDeleted), newTestPod(j, "t2", v1.PodPending, beingDeleted), newTestPod(j, "t3", v1.PodRunning, beingDeleted)}
			},
			want: planView{
				Interim: statusView{Terminating: 3, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Terminating: 3, FailedIndexes: "<nil>", Started: true},
			},
		},

		// podFailurePolicy.
		"FailJob on an exit code": {
			job: newTestJob(2, 1, failurePolicy(exitIn(batch.PodFailurePolicyActionFailJob, 42))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed, exitCode(42))}
			},
			want: planView{
				Interim: statusView{UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/PodFailurePolicy"},
				DropFinalizers: "f1",
				Final: statusView{Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/PodFailurePolicy Failed=True/PodFailurePolicy"},
				Finished: true,
				Events:   "PodFailurePolicy",
			},
		},
		"FailJob stops the other pods first": {
			job: newTestJob(2, 2, failurePolicy(exitIn(batch.PodFailurePolicyActionFailJob, 42))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed, exitCode(42)), newTestPod(j, "r1", v1.PodRunning)}
			},
			want: planView{
				Deletes: "r1",
				Interim: statusView{Terminating: 1, UncountedFailed: "f1,r1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/PodFailurePolicy"},
				DropFinalizers: "f1,r1",
				Final: statusView{Terminating: 1, Failed: 2, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/PodFailurePolicy"},
			},
		},
		"Ignore a disruption: not counted, still replaced": {
			job: newTestJob(2, 1, failurePolicy(onDisruption(batch.PodFailurePolicyActionIgnore))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed, podCondition(v1.DisruptionTarget))}
			},
			want: planView{
				Creates:        "pod",
				Interim:        running(1, 0),
				DropFinalizers: "f1",
				Final:          running(1, 0),
			},
		},
		"Count behaves like no rule": {
			job: newTestJob(2, 1, backoffLimit(0), failurePolicy(exitIn(batch.PodFailurePolicyActionCount, 1))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed)}
			},
			want: planView{
				Interim: statusView{UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded"},
				DropFinalizers: "f1",
				Final: statusView{Failed: 1, FailedIndexes: "<nil>", Started: true,
					Conditions: "FailureTarget=True/BackoffLimitExceeded Failed=True/BackoffLimitExceeded"},
				Finished: true,
				Events:   "BackoffLimitExceeded",
			},
		},
		"the first matching rule wins": {
			job: newTestJob(2, 1, failurePolicy(exitIn(batch.PodFailurePolicyActionIgnore, 1), exitIn(batch.PodFailurePolicyActionFailJob, 1))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed)}
			},
			want: planView{Creates: "pod", Interim: running(1, 0), DropFinalizers: "f1", Final: running(1, 0)},
		},

		// Indexed Jobs.
		"indexed start": {
			job:  newTestJob(3, 2, indexed),
			want: planView{Creates: "0,1", Interim: runningIndexed(2, ""), Final: runningIndexed(2, "")},
		},
		"indexed: a succeeded index is recorded, the next one starts": {
			job: newTestJob(3, 2, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s0", v1.PodSucceeded, atIndex(0)), newTestPod(j, "r1", v1.PodRunning, atIndex(1))}
			},
			want: planView{
				Creates:        "2",
				Interim:        statusView{Active: 2, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "s0",
				Final:          statusView{Active: 2, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
			},
		},
		"indexed: a repeated index keeps one pod": {
			job: newTestJob(3, 3, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "a", v1.PodRunning, atIndex(1), ready),
					newTestPod(j, "b", v1.PodRunning, atIndex(1)),
					newTestPod(j, "c", v1.PodRunning, atIndex(0)),
				}
			},
			want: planView{
				Deletes: "!b",
				Interim: statusView{Active: 2, Ready: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 2, Ready: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"indexed: pods without a valid index are deleted": {
			job: newTestJob(2, 2, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "x", v1.PodRunning),
					newTestPod(j, "y", v1.PodRunning, atIndex(5)),
					newTestPod(j, "z", v1.PodRunning, atIndex(0)),
				}
			},
			want: planView{
				Deletes: "!x,!y",
				Interim: statusView{Active: 1, Terminating: 2, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 1, Terminating: 2, FailedIndexes: "<nil>", Started: true},
			},
		},
		"indexed: complete": {
			job: newTestJob(3, 2, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "s0", v1.PodSucceeded, atIndex(0)),
					newTestPod(j, "s1", v1.PodSucceeded, atIndex(1)),
					newTestPod(j, "s2", v1.PodSucceeded, atIndex(2)),
				}
			},
			want: planView{
				Interim: statusView{Succeeded: 3, CompletedIndexes: "0-2", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached"},
				DropFinalizers: "s0,s1,s2",
				Final: statusView{Succeeded: 3, CompletedIndexes: "0-2", FailedIndexes: "<nil>", Started: true, Completed: true,
					Conditions: "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached"},
				Finished: true,
				Events:   "Completed",
			},
		},
		"indexed: a repeated succeeded index counts once": {
			job: newTestJob(2, 2, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "a", v1.PodSucceeded, atIndex(0)), newTestPod(j, "b", v1.PodSucceeded, atIndex(0))}
			},
			want: planView{
				Creates:        "1",
				Interim:        statusView{Active: 1, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "a,b",
				Final:          statusView{Active: 1, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
			},
		},
		"elastic: fewer completions forget the indexes beyond": {
			job: newTestJob(2, 2, indexed, startedAt(ago(time.Minute)), withStatus(func(s *batch.JobStatus) {
				s.CompletedIndexes, s.Succeeded = "0,2,3", 3
			})),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "r1", v1.PodRunning, atIndex(1))}
			},
			want: planView{
				Interim: statusView{Active: 1, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 1, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
			},
		},
		"elastic: indexes beyond completions are deleted": {
			job: newTestJob(1, 1, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "i0", v1.PodRunning, atIndex(0)), newTestPod(j, "i1", v1.PodRunning, atIndex(1))}
			},
			want: planView{
				Deletes: "!i1",
				Interim: statusView{Active: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"elastic: more completions and parallelism start more indexes": {
			job: newTestJob(4, 4, indexed, withStatus(func(s *batch.JobStatus) { s.CompletedIndexes, s.Succeeded = "0", 1 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "i1", v1.PodRunning, atIndex(1))}
			},
			want: planView{
				Creates: "2,3",
				Interim: statusView{Active: 3, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 3, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
			},
		},
		"indexed, Failed: a terminating index is not started again": {
			job: newTestJob(5, 2, indexed, replaceFailedOnly),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "t0", v1.PodRunning, atIndex(0), beingDeleted)}
			},
			want: planView{
				Creates: "1",
				Interim: statusView{Active: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Active: 1, Terminating: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"indexed, TerminatingOrFailed: a terminating index starts again": {
			job: newTestJob(5, 2, indexed),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "t0", v1.PodRunning, atIndex(0), beingDeleted)}
			},
			want: planView{
				Creates:        "0,1",
				Interim:        statusView{Active: 2, Terminating: 1, UncountedFailed: "t0", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "t0",
				Final:          statusView{Active: 2, Terminating: 1, Failed: 1, FailedIndexes: "<nil>", Started: true},
			},
		},

		// backoffLimitPerIndex.
		"per index: a failed index is retried, its pod kept until replaced": {
			job: newTestJob(2, 2, indexed, perIndexLimit(1)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f0", v1.PodFailed, atIndex(0)), newTestPod(j, "r1", v1.PodRunning, atIndex(1))}
			},
			want: planView{
				Creates: "0",
				Interim: statusView{Active: 2, Started: true},
				Final:   statusView{Active: 2, Started: true},
			},
		},
		"per index: the replaced pod is counted once its replacement runs": {
			job: newTestJob(2, 2, indexed, perIndexLimit(1)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "f0", v1.PodFailed, atIndex(0)),
					newTestPod(j, "r0", v1.PodRunning, atIndex(0), annotated(batch.JobIndexFailureCountAnnotation, "1")),
					newTestPod(j, "r1", v1.PodRunning, atIndex(1)),
				}
			},
			want: planView{
				Interim:        statusView{Active: 2, UncountedFailed: "f0", Started: true},
				DropFinalizers: "f0",
				Final:          statusView{Active: 2, Failed: 1, Started: true},
			},
		},
		"per index: an index fails after its limit": {
			job: newTestJob(2, 2, indexed, perIndexLimit(1)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "f0", v1.PodFailed, atIndex(0), annotated(batch.JobIndexFailureCountAnnotation, "1")),
					newTestPod(j, "r1", v1.PodRunning, atIndex(1)),
				}
			},
			want: planView{
				Interim:        statusView{Active: 1, UncountedFailed: "f0", FailedIndexes: "0", Started: true},
				DropFinalizers: "f0",
				Final:          statusView{Active: 1, Failed: 1, FailedIndexes: "0", Started: true},
			},
		},
		"per index: maxFailedIndexes exceeded": {
			job: newTestJob(2, 2, indexed, perIndexLimit(1), maxFailedIndexes(0)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "f0", v1.PodFailed, atIndex(0), annotated(batch.JobIndexFailureCountAnnotation, "1")),
					newTestPod(j, "r1", v1.PodRunning, atIndex(1)),
				}
			},
			want: planView{
				Deletes: "r1",
				Interim: statusView{Terminating: 1, UncountedFailed: "f0,r1", FailedIndexes: "0", Started: true,
					Conditions: "FailureTarget=True/MaxFailedIndexesExceeded"},
				DropFinalizers: "f0,r1",
				Final: statusView{Terminating: 1, Failed: 2, FailedIndexes: "0", Started: true,
					Conditions: "FailureTarget=True/MaxFailedIndexesExceeded"},
			},
		},
		"per index: every index done, one failed": {
			job: newTestJob(2, 2, indexed, perIndexLimit(1), withStatus(func(s *batch.JobStatus) { s.CompletedIndexes, s.Succeeded = "1", 1 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f0", v1.PodFailed, atIndex(0), annotated(batch.JobIndexFailureCountAnnotation, "1"))}
			},
			want: planView{
				Interim: statusView{Succeeded: 1, CompletedIndexes: "1", UncountedFailed: "f0", FailedIndexes: "0", Started: true,
					Conditions: "FailureTarget=True/FailedIndexes"},
				DropFinalizers: "f0",
				Final: statusView{Succeeded: 1, CompletedIndexes: "1", Failed: 1, FailedIndexes: "0", Started: true,
					Conditions: "FailureTarget=True/FailedIndexes Failed=True/FailedIndexes"},
				Finished: true,
				Events:   "FailedIndexes",
			},
		},
		"per index: FailIndex fails the index at once": {
			job: newTestJob(3, 1, indexed, perIndexLimit(5), failurePolicy(exitIn(batch.PodFailurePolicyActionFailIndex, 3))),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f0", v1.PodFailed, atIndex(0), exitCode(3))}
			},
			want: planView{
				Creates:        "1",
				Interim:        statusView{Active: 1, UncountedFailed: "f0", FailedIndexes: "0", Started: true},
				DropFinalizers: "f0",
				Final:          statusView{Active: 1, Failed: 1, FailedIndexes: "0", Started: true},
			},
		},
		"per index: the replacement waits for the index's own delay": {
			job: newTestJob(2, 1, indexed, perIndexLimit(3)),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f0", v1.PodFailed, atIndex(0), finishedAt(ago(2*time.Second)), annotated(batch.JobIndexFailureCountAnnotation, "1"))}
			},
			want: planView{
				Interim: statusView{Started: true},
				Final:   statusView{Started: true},
				// The second failure of the index: 20s after it finished.
				Requeue: 18 * time.Second,
			},
		},

		// successPolicy.
		"success policy met: the rest is stopped, not counted": {
			job: newTestJob(3, 3, indexed, successPolicy(batch.SuccessPolicyRule{SucceededIndexes: ptr.To("0")})),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{
					newTestPod(j, "s0", v1.PodSucceeded, atIndex(0)),
					newTestPod(j, "r1", v1.PodRunning, atIndex(1), ready),
					newTestPod(j, "r2", v1.PodRunning, atIndex(2)),
				}
			},
			want: planView{
				Deletes: "r1,r2",
				Interim: statusView{Terminating: 2, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/SuccessPolicy"},
				DropFinalizers: "r1,r2,s0",
				Final: statusView{Terminating: 2, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/SuccessPolicy"},
			},
		},
		"success policy by count": {
			job: newTestJob(4, 2, indexed, successPolicy(batch.SuccessPolicyRule{SucceededCount: ptr.To[int32](2)})),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s0", v1.PodSucceeded, atIndex(0)), newTestPod(j, "s3", v1.PodSucceeded, atIndex(3))}
			},
			want: planView{
				Interim: statusView{Succeeded: 2, CompletedIndexes: "0,3", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/SuccessPolicy"},
				DropFinalizers: "s0,s3",
				Final: statusView{Succeeded: 2, CompletedIndexes: "0,3", FailedIndexes: "<nil>", Started: true, Completed: true,
					Conditions: "SuccessCriteriaMet=True/SuccessPolicy Complete=True/SuccessPolicy"},
				Finished: true,
				Events:   "Completed",
			},
		},
		"success policy not met yet": {
			job: newTestJob(3, 1, indexed, successPolicy(batch.SuccessPolicyRule{SucceededIndexes: ptr.To("0-1")})),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s0", v1.PodSucceeded, atIndex(0))}
			},
			want: planView{
				Creates:        "1",
				Interim:        statusView{Active: 1, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "s0",
				Final:          statusView{Active: 1, Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true},
			},
		},
		"a recorded SuccessCriteriaMet completes once pods are gone": {
			job: newTestJob(3, 3, indexed, startedAt(ago(time.Minute)),
				withStatus(func(s *batch.JobStatus) { s.CompletedIndexes, s.Succeeded = "0", 1 }),
				withCondition(batch.JobSuccessCriteriaMet, batch.JobReasonSuccessPolicy, "Matched rules at index 0")),
			want: planView{
				Interim: statusView{Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true,
					Conditions: "SuccessCriteriaMet=True/SuccessPolicy"},
				Final: statusView{Succeeded: 1, CompletedIndexes: "0", FailedIndexes: "<nil>", Started: true, Completed: true,
					Conditions: "SuccessCriteriaMet=True/SuccessPolicy Complete=True/SuccessPolicy"},
				Finished: true,
				Events:   "Completed",
			},
		},

		// Tracking with finalizers.
		"uncounted pods whose finalizer is gone are counted": {
			job: newTestJob(5, 0, startedAt(ago(time.Minute)), withStatus(func(s *batch.JobStatus) {
				s.UncountedTerminatedPods = &batch.UncountedTerminatedPods{Succeeded: []types.UID{"a"}, Failed: []types.UID{"b"}}
			})),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "a", v1.PodSucceeded, noFinalizer), newTestPod(j, "b", v1.PodFailed, noFinalizer)}
			},
			want: planView{
				Interim: statusView{Succeeded: 1, Failed: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Succeeded: 1, Failed: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"a finalizer this controller already removed is not counted twice": {
			job:           newTestJob(5, 0, startedAt(ago(time.Minute)), withStatus(func(s *batch.JobStatus) { s.Succeeded = 1 })),
			finalizerGone: []string{"s1"},
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s1", v1.PodSucceeded)}
			},
			want: planView{
				Interim: statusView{Succeeded: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Succeeded: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"an uncounted pod that kept its finalizer is retried, not added again": {
			job: newTestJob(5, 0, startedAt(ago(time.Minute)), withStatus(func(s *batch.JobStatus) {
				s.UncountedTerminatedPods = &batch.UncountedTerminatedPods{Succeeded: []types.UID{"s1"}}
			})),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "s1", v1.PodSucceeded)}
			},
			want: planView{
				Interim:        statusView{UncountedSucceeded: "s1", FailedIndexes: "<nil>", Started: true},
				DropFinalizers: "s1",
				Final:          statusView{Succeeded: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
		"a counted pod is not counted again": {
			job: newTestJob(5, 0, startedAt(ago(time.Minute)), withStatus(func(s *batch.JobStatus) { s.Failed = 1 })),
			pods: func(j *batch.Job) []*v1.Pod {
				return []*v1.Pod{newTestPod(j, "f1", v1.PodFailed, noFinalizer)}
			},
			want: planView{
				Interim: statusView{Failed: 1, FailedIndexes: "<nil>", Started: true},
				Final:   statusView{Failed: 1, FailedIndexes: "<nil>", Started: true},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var pods []*v1.Pod
			if tc.pods != nil {
				pods = tc.pods(tc.job)
			}
			retry := defaultRetry
			if tc.retry != nil {
				retry = *tc.retry
			}
			gone := map[types.UID]bool{}
			for _, u := range tc.finalizerGone {
				gone[types.UID(u)] = true
			}
			before := tc.job.DeepCopy()
			got, _ := runPlan(&observed{
				job: tc.job, pods: pods, now: testNow, settled: !tc.unsettled,
				finalizerGone: gone, backoff: tc.backoff, retry: retry,
			})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.job); diff != "" {
				t.Errorf("the plan modified the cached Job:\n%s", diff)
			}
		})
	}
}

// runningIndexed is the status of an Indexed Job with n active pods.
func runningIndexed(n int32, completed string) statusView {
	return statusView{Active: n, CompletedIndexes: completed, FailedIndexes: "<nil>", Started: true}
}

func TestPlanIndexedPodContent(t *testing.T) {
	job := newTestJob(3, 1, indexed, func(j *batch.Job) {
		j.Spec.Template.Spec.Subdomain = "workers"
		j.Spec.Template.Spec.InitContainers = []v1.Container{{Name: "init"}}
		j.Spec.Template.Spec.Containers = append(j.Spec.Template.Spec.Containers, v1.Container{
			Name: "own-env", Env: []v1.EnvVar{{Name: "JOB_COMPLETION_INDEX", Value: "mine"}},
		})
		j.Spec.Template.Annotations = map[string]string{"note": "kept"}
		j.Spec.Template.Finalizers = []string{"example.com/keep"}
	})
	d := decide(&observed{job: job, now: testNow, settled: true, retry: defaultRetry})
	if len(d.creates) != 1 {
		t.Fatalf("creates = %d, want 1", len(d.creates))
	}
	p := d.creates[0]
	indexEnv := v1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{
		FieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']",
	}}}
	want := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    "default",
			GenerateName: "pi-0-",
			Labels: map[string]string{
				batch.ControllerUidLabel: "job-uid", batch.JobNameLabel: "pi",
				"controller-uid": "job-uid", "job-name": "pi",
				batch.JobCompletionIndexAnnotation: "0",
			},
			Annotations: map[string]string{"note": "kept", batch.JobCompletionIndexAnnotation: "0"},
			Finalizers:  []string{"example.com/keep", batch.JobTrackingFinalizer},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: "pi", UID: "job-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: v1.PodSpec{
			RestartPolicy:  v1.RestartPolicyNever,
			Hostname:       "pi-0",
			Subdomain:      "workers",
			InitContainers: []v1.Container{{Name: "init", Env: []v1.EnvVar{indexEnv}}},
			Containers: []v1.Container{
				{Name: "main", Image: "busybox", Env: []v1.EnvVar{indexEnv}},
				{Name: "own-env", Env: []v1.EnvVar{{Name: "JOB_COMPLETION_INDEX", Value: "mine"}}},
			},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("indexed pod (-want +got):\n%s", diff)
	}
	if len(job.Spec.Template.Spec.Containers[0].Env) != 0 {
		t.Errorf("the plan modified the Job's template")
	}
}

func TestPlanNonIndexedPodContent(t *testing.T) {
	job := newTestJob(1, 1)
	d := decide(&observed{job: job, now: testNow, settled: true, retry: defaultRetry})
	if len(d.creates) != 1 {
		t.Fatalf("creates = %d, want 1", len(d.creates))
	}
	p := d.creates[0]
	if p.GenerateName != "pi-" || p.Spec.Hostname != "" || len(p.Spec.Containers[0].Env) != 0 {
		t.Errorf("pod = generateName %q hostname %q env %v, want pi-, no hostname, no env", p.GenerateName, p.Spec.Hostname, p.Spec.Containers[0].Env)
	}
	if _, ok := p.Annotations[batch.JobCompletionIndexAnnotation]; ok {
		t.Errorf("NonIndexed pod carries a completion index")
	}
	if diff := cmp.Diff([]string{batch.JobTrackingFinalizer}, p.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
}

func TestPlanPerIndexFailureCounts(t *testing.T) {
	ignoreDisruption := batch.PodFailurePolicyRule{Action: batch.PodFailurePolicyActionIgnore, OnPodConditions: []batch.PodFailurePolicyOnPodConditionsPattern{
		{Type: v1.DisruptionTarget, Status: v1.ConditionTrue},
	}}
	cases := map[string]struct {
		job         *batch.Job
		failed      *v1.Pod
		wantCount   string
		wantIgnored string
	}{
		"first attempt": {
			job:       newTestJob(1, 1, indexed, perIndexLimit(2)),
			wantCount: "0",
		},
		"a counted failure adds one": {
			job:       newTestJob(1, 1, indexed, perIndexLimit(2)),
			failed:    newTestPod(newTestJob(1, 1), "f0", v1.PodFailed, atIndex(0), annotated(batch.JobIndexFailureCountAnnotation, "1")),
			wantCount: "2",
		},
		"an ignored failure adds to the ignored count": {
			job:         newTestJob(1, 1, indexed, perIndexLimit(1), failurePolicy(ignoreDisruption)),
			failed:      newTestPod(newTestJob(1, 1), "f0", v1.PodFailed, atIndex(0), podCondition(v1.DisruptionTarget), annotated(batch.JobIndexIgnoredFailureCountAnnotation, "2")),
			wantCount:   "0",
			wantIgnored: "3",
		},
		"a malformed count reads as zero": {
			job:       newTestJob(1, 1, indexed, perIndexLimit(2)),
			failed:    newTestPod(newTestJob(1, 1), "f0", v1.PodFailed, atIndex(0), annotated(batch.JobIndexFailureCountAnnotation, "lots")),
			wantCount: "1",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var pods []*v1.Pod
			if tc.failed != nil {
				pods = append(pods, tc.failed)
			}
			d := decide(&observed{job: tc.job, pods: pods, now: testNow, settled: true, retry: defaultRetry})
			if len(d.creates) != 1 {
				t.Fatalf("creates = %d, want 1 (requeue %v)", len(d.creates), d.requeue)
			}
			a := d.creates[0].Annotations
			if got := a[batch.JobIndexFailureCountAnnotation]; got != tc.wantCount {
				t.Errorf("failure count = %q, want %q", got, tc.wantCount)
			}
			if got := a[batch.JobIndexIgnoredFailureCountAnnotation]; got != tc.wantIgnored {
				t.Errorf("ignored failure count = %q, want %q", got, tc.wantIgnored)
			}
		})
	}
}

func TestPlanFailJobMessage(t *testing.T) {
	cases := map[string]struct {
		// skipped, when set, is a rule before rule that the pod does not match.
		skipped *batch.PodFailurePolicyRule
		rule    batch.PodFailurePolicyRule
		pod     func(*batch.Job) *v1.Pod
		want    string
	}{
		"exit code": {
			rule: batch.PodFailurePolicyRule{Action: batch.PodFailurePolicyActionFailJob, OnExitCodes: &batch.PodFailurePolicyOnExitCodesRequirement{
				Operator: batch.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2},
			}},
			pod:  func(j *batch.Job) *v1.Pod { return newTestPod(j, "f1", v1.PodFailed, exitCode(7)) },
			want: "Container main for pod default/f1 failed with exit code 7 matching FailJob rule at index 0",
		},
		"pod condition": {
			rule: batch.PodFailurePolicyRule{Action: batch.PodFailurePolicyActionFailJob, OnPodConditions: []batch.PodFailurePolicyOnPodConditionsPattern{
				{Type: v1.DisruptionTarget, Status: v1.ConditionTrue},
			}},
			pod: func(j *batch.Job) *v1.Pod {
				return newTestPod(j, "f1", v1.PodFailed, podCondition(v1.DisruptionTarget))
			},
			want: "Pod default/f1 has condition DisruptionTarget matching FailJob rule at index 0",
		},
		"exit code of the third container, second rule": {
			skipped: &batch.PodFailurePolicyRule{Action: batch.PodFailurePolicyActionFailJob, OnPodConditions: []batch.PodFailurePolicyOnPodConditionsPattern{
				{Type: v1.DisruptionTarget, Status: v1.ConditionTrue},
			}},
			rule: batch.PodFailurePolicyRule{Action: batch.PodFailurePolicyActionFailJob, OnExitCodes: &batch.PodFailurePolicyOnExitCodesRequirement{
				Operator: batch.PodFailurePolicyOnExitCodesOpIn, Values: []int32{7},
			}},
			pod: func(j *batch.Job) *v1.Pod {
				p := newTestPod(j, "f1", v1.PodFailed)
				p.Status.ContainerStatuses = []v1.ContainerStatus{
					{Name: "first", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}},
					{Name: "second", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 2}}},
					{Name: "third", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 7}}},
				}
				return p
			},
			want: "Container third for pod default/f1 failed with exit code 7 matching FailJob rule at index 1",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rules := []batch.PodFailurePolicyRule{tc.rule}
			if tc.skipped != nil {
				rules = []batch.PodFailurePolicyRule{*tc.skipped, tc.rule}
			}
			job := newTestJob(1, 1, failurePolicy(rules...))
			d := decide(&observed{job: job, pods: []*v1.Pod{tc.pod(job)}, now: testNow, settled: true, retry: defaultRetry})
			if d.finishing == nil || d.finishing.Message != tc.want || d.finishing.Type != batch.JobFailureTarget {
				t.Fatalf("finishing = %+v, want FailureTarget %q", d.finishing, tc.want)
			}
		})
	}
}

func TestPlanOutcomes(t *testing.T) {
	t.Run("failed creations lower active", func(t *testing.T) {
		d := decide(&observed{job: newTestJob(5, 3), now: testNow, settled: true, retry: defaultRetry})
		tr := d.track(outcome{createsFailed: 2})
		if tr.status.Active != 1 {
			t.Errorf("active = %d, want 1", tr.status.Active)
		}
	})
	t.Run("a failed deletion keeps the Job from ending", func(t *testing.T) {
		job := newTestJob(5, 2, backoffLimit(0))
		pods := []*v1.Pod{newTestPod(job, "f1", v1.PodFailed), newTestPod(job, "r1", v1.PodRunning, ready)}
		d := decide(&observed{job: job, pods: pods, now: testNow, settled: true, retry: defaultRetry})
		tr := d.track(outcome{deletesFailed: 1, readyDeletesFailed: 1})
		got := viewStatus(tr.status)
		want := statusView{Active: 1, Ready: 1, UncountedFailed: "f1", FailedIndexes: "<nil>", Started: true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		if tr.final != nil {
			t.Errorf("final = %v, want none", tr.final)
		}
	})
	t.Run("finalizers not removed stay uncounted", func(t *testing.T) {
		job := newTestJob(2, 2)
		pods := []*v1.Pod{newTestPod(job, "s1", v1.PodSucceeded), newTestPod(job, "s2", v1.PodSucceeded)}
		d := decide(&observed{job: job, pods: pods, now: testNow, settled: true, retry: defaultRetry})
		s := d.track(outcome{}).settle(sets.New[types.UID]("s1"))
		got := viewStatus(s.status)
		want := statusView{Succeeded: 1, UncountedSucceeded: "s2", FailedIndexes: "<nil>", Started: true,
			Conditions: "SuccessCriteriaMet=True/CompletionsReached"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		if s.finished {
			t.Errorf("finished with an uncounted pod")
		}
	})
}

func TestPlanCapsUncountedPods(t *testing.T) {
	job := newTestJob(600, 10)
	var pods []*v1.Pod
	for i := range 600 {
		pods = append(pods, newTestPod(job, fmt.Sprintf("s%03d", i), v1.PodSucceeded))
	}
	d := decide(&observed{job: job, pods: pods, now: testNow, settled: true, retry: defaultRetry})
	tr := d.track(outcome{})
	if n := len(tr.status.UncountedTerminatedPods.Succeeded); n != maxUncounted {
		t.Errorf("uncounted = %d, want %d", n, maxUncounted)
	}
	if len(tr.dropFinalizers) != maxUncounted || !tr.capped {
		t.Errorf("drops = %d capped = %v, want %d and capped", len(tr.dropFinalizers), tr.capped, maxUncounted)
	}
	dropped := sets.New[types.UID]()
	for _, p := range tr.dropFinalizers {
		dropped.Insert(p.UID)
	}
	s := tr.settle(dropped)
	if s.finished || s.status.Succeeded != maxUncounted {
		t.Errorf("finished = %v succeeded = %d, want not finished, %d", s.finished, s.status.Succeeded, maxUncounted)
	}
	// The next sync, with the first 500 counted and their finalizers gone,
	// counts the rest and completes.
	next := job.DeepCopy()
	next.Status = s.status
	for _, p := range pods[:0] {
		_ = p
	}
	var rest []*v1.Pod
	for _, p := range pods {
		if dropped.Has(p.UID) {
			q := p.DeepCopy()
			q.Finalizers = nil
			rest = append(rest, q)
		} else {
			rest = append(rest, p)
		}
	}
	got, _ := runPlan(&observed{job: next, pods: rest, now: testNow, settled: true, retry: defaultRetry})
	if !got.Finished || got.Final.Succeeded != 600 {
		t.Errorf("second sync: finished = %v succeeded = %d, want finished with 600", got.Finished, got.Final.Succeeded)
	}
}

func TestPlanConditionTimes(t *testing.T) {
	job := newTestJob(1, 1, startedAt(ago(time.Minute)))
	pods := []*v1.Pod{newTestPod(job, "s1", v1.PodSucceeded)}
	d := decide(&observed{job: job, pods: pods, now: testNow, settled: true, retry: defaultRetry})
	s := d.track(outcome{}).settle(sets.New[types.UID]("s1"))
	want := []batch.JobCondition{
		{Type: batch.JobSuccessCriteriaMet, Status: v1.ConditionTrue, Reason: "CompletionsReached", Message: msgCompletions,
			LastProbeTime: metav1.NewTime(testNow), LastTransitionTime: metav1.NewTime(testNow)},
		{Type: batch.JobComplete, Status: v1.ConditionTrue, Reason: "CompletionsReached", Message: msgCompletions,
			LastProbeTime: metav1.NewTime(testNow), LastTransitionTime: metav1.NewTime(testNow)},
	}
	if diff := cmp.Diff(want, s.status.Conditions); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if s.status.CompletionTime == nil || !s.status.CompletionTime.Time.Equal(testNow) {
		t.Errorf("completionTime = %v, want %v", s.status.CompletionTime, testNow)
	}
	if !s.status.StartTime.Time.Equal(ago(time.Minute)) {
		t.Errorf("startTime changed to %v", s.status.StartTime)
	}
}

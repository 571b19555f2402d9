package job

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIndexSetParseAndString(t *testing.T) {
	cases := map[string]struct {
		text    string
		limit   int
		want    string
		count   int
		skipped bool
	}{
		"empty":                    {text: "", limit: 10, want: "", count: 0},
		"single":                   {text: "3", limit: 10, want: "3", count: 1},
		"pair stays a pair":        {text: "3,4", limit: 10, want: "3,4", count: 2},
		"three make a range":       {text: "3,4,5", limit: 10, want: "3-5", count: 3},
		"ranges merge":             {text: "0-2,3-5,7", limit: 10, want: "0-5,7", count: 7},
		"beyond limit is dropped":  {text: "1,3-5,8-9", limit: 5, want: "1,3,4", count: 3},
		"limit cuts a range":       {text: "0-9", limit: 4, want: "0-3", count: 4},
		"malformed piece skipped":  {text: "1,x,3", limit: 10, want: "1,3", count: 2, skipped: true},
		"reversed range skipped":   {text: "5-2,7", limit: 10, want: "7", count: 1, skipped: true},
		"negative skipped":         {text: "-1,2", limit: 10, want: "2", count: 1, skipped: true},
		"unsorted input is sorted": {text: "7,1-2", limit: 10, want: "1,2,7", count: 3},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			set, skipped := parseIndexSet(tc.text, tc.limit)
			if got := set.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := set.count(); got != tc.count {
				t.Errorf("count() = %d, want %d", got, tc.count)
			}
			if skipped != tc.skipped {
				t.Errorf("skipped = %v, want %v", skipped, tc.skipped)
			}
		})
	}
}

func TestIndexSetOperations(t *testing.T) {
	set := indexSet(nil).withIndexes([]int{9, 1, 2, 3, 5, 2})
	if got := set.String(); got != "1-3,5,9" {
		t.Fatalf("indexSetOf = %q", got)
	}
	for ix, want := range map[int]bool{0: false, 1: true, 3: true, 4: false, 5: true, 8: false, 9: true, 10: false} {
		if set.has(ix) != want {
			t.Errorf("has(%d) = %v, want %v", ix, !want, want)
		}
	}
	if got := set.withIndexes([]int{4, 0, 10}).String(); got != "0-5,9,10" {
		t.Errorf("withIndexes = %q", got)
	}
	if got := set.String(); got != "1-3,5,9" {
		t.Errorf("withIndexes modified its receiver: %q", got)
	}
	other, _ := parseIndexSet("2-6,9", 100)
	if got := set.overlap(other); got != 4 {
		t.Errorf("overlap = %d, want 4 (2,3,5,9)", got)
	}
	if got := set.union(other).String(); got != "1-6,9" {
		t.Errorf("union = %q", got)
	}
	if diff := cmp.Diff([]int{0, 4, 6}, set.firstMissing(3, 100)); diff != "" {
		t.Errorf("firstMissing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 4}, set.firstMissing(5, 5)); diff != "" {
		t.Errorf("firstMissing under a limit (-want +got):\n%s", diff)
	}
	if got := set.firstMissing(0, 10); got != nil {
		t.Errorf("firstMissing(0) = %v", got)
	}
	var empty indexSet
	if diff := cmp.Diff([]int{0, 1}, empty.firstMissing(2, 10)); diff != "" {
		t.Errorf("firstMissing of empty (-want +got):\n%s", diff)
	}
}

func TestIndexSetLarge(t *testing.T) {
	var all []int
	for i := 0; i < 5000; i += 2 {
		all = append(all, i)
	}
	set := indexSet(nil).withIndexes(all)
	if set.count() != 2500 || len(set) != 2500 {
		t.Fatalf("count %d spans %d", set.count(), len(set))
	}
	var odd []int
	for i := 1; i < 5000; i += 2 {
		odd = append(odd, i)
	}
	full := set.withIndexes(odd)
	if got := full.String(); got != "0-4999" {
		t.Errorf("merged = %q", got)
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	cases := map[string]struct {
		policy   retryPolicy
		failures int32
		want     time.Duration
	}{
		"no failure":          {policy: defaultRetry, failures: 0, want: 0},
		"first":               {policy: defaultRetry, failures: 1, want: 10 * time.Second},
		"second":              {policy: defaultRetry, failures: 2, want: 20 * time.Second},
		"sixth":               {policy: defaultRetry, failures: 6, want: 320 * time.Second},
		"seventh is capped":   {policy: defaultRetry, failures: 7, want: 10 * time.Minute},
		"very many":           {policy: defaultRetry, failures: 1 << 30, want: 10 * time.Minute},
		"custom":              {policy: retryPolicy{base: time.Second, max: 30 * time.Second}, failures: 5, want: 16 * time.Second},
		"custom capped":       {policy: retryPolicy{base: time.Second, max: 30 * time.Second}, failures: 6, want: 30 * time.Second},
		"max below base caps": {policy: retryPolicy{base: time.Minute, max: time.Second}, failures: 1, want: time.Second},
		"zero base":           {policy: retryPolicy{base: 0, max: time.Minute}, failures: 9, want: 0},
		"huge values do not overflow": {
			policy: retryPolicy{base: 200 * 365 * 24 * time.Hour, max: 290 * 365 * 24 * time.Hour}, failures: 3,
			want: 290 * 365 * 24 * time.Hour,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.policy.delay(tc.failures); got != tc.want {
				t.Errorf("delay(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
	if got := defaultRetry.remaining(2, ago(5*time.Second), testNow); got != 15*time.Second {
		t.Errorf("remaining = %v, want 15s", got)
	}
	if got := defaultRetry.remaining(1, ago(time.Minute), testNow); got != 0 {
		t.Errorf("remaining after the delay = %v, want 0", got)
	}
}

func TestRetryPolicyFor(t *testing.T) {
	cases := map[string]struct {
		annotations map[string]string
		want        retryPolicy
		problems    string
	}{
		"none":      {want: defaultRetry},
		"both":      {annotations: map[string]string{BackoffBaseAnnotation: "1s", BackoffMaxAnnotation: "30s"}, want: retryPolicy{time.Second, 30 * time.Second}},
		"base only": {annotations: map[string]string{BackoffBaseAnnotation: "500ms"}, want: retryPolicy{500 * time.Millisecond, defaultRetry.max}},
		"max only":  {annotations: map[string]string{BackoffMaxAnnotation: "1m"}, want: retryPolicy{defaultRetry.base, time.Minute}},
		"zero base": {annotations: map[string]string{BackoffBaseAnnotation: "0s"}, want: retryPolicy{0, defaultRetry.max}},
		"garbage falls back": {
			annotations: map[string]string{BackoffBaseAnnotation: "soon", BackoffMaxAnnotation: "30s"},
			want:        retryPolicy{defaultRetry.base, 30 * time.Second},
			problems:    `quartet.dev/backoff-base="soon" is not a duration`,
		},
		"negative falls back": {
			annotations: map[string]string{BackoffMaxAnnotation: "-5s"},
			want:        defaultRetry,
			problems:    `quartet.dev/backoff-max="-5s" is negative`,
		},
		"a bare number is not a duration": {
			annotations: map[string]string{BackoffBaseAnnotation: "5"},
			want:        defaultRetry,
			problems:    `quartet.dev/backoff-base="5" is not a duration`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			job := newTestJob(1, 1)
			job.Annotations = tc.annotations
			got, problems := retryPolicyFor(job)
			if got != tc.want {
				t.Errorf("policy = %+v, want %+v", got, tc.want)
			}
			if p := strings.Join(problems, "; "); p != tc.problems {
				t.Errorf("problems = %q, want %q", p, tc.problems)
			}
		})
	}
}

func TestBackoffRecordAdvance(t *testing.T) {
	job := newTestJob(1, 1)
	failed := func(name string, at time.Duration) *v1.Pod {
		return newTestPod(job, name, v1.PodFailed, finishedAt(ago(at)))
	}
	succeeded := func(name string, at time.Duration) *v1.Pod {
		return newTestPod(job, name, v1.PodSucceeded, finishedAt(ago(at)))
	}
	start := backoffRecord{failures: 2, lastFailure: ago(time.Minute)}
	cases := map[string]struct {
		succeeded, failed []*v1.Pod
		want              backoffRecord
	}{
		"nothing new":           {want: start},
		"failures add up":       {failed: []*v1.Pod{failed("a", 5*time.Second), failed("b", 9*time.Second)}, want: backoffRecord{4, ago(5 * time.Second)}},
		"a success resets":      {succeeded: []*v1.Pod{succeeded("s", time.Second)}, want: backoffRecord{}},
		"failures after it":     {succeeded: []*v1.Pod{succeeded("s", 5*time.Second)}, failed: []*v1.Pod{failed("a", 2*time.Second), failed("b", 8*time.Second), failed("c", 3*time.Second)}, want: backoffRecord{2, ago(2 * time.Second)}},
		"latest success counts": {succeeded: []*v1.Pod{succeeded("s1", 9*time.Second), succeeded("s2", 4*time.Second)}, failed: []*v1.Pod{failed("a", 6*time.Second)}, want: backoffRecord{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := start.advance(tc.succeeded, tc.failed)
			if got.failures != tc.want.failures || !got.lastFailure.Equal(tc.want.lastFailure) {
				t.Errorf("advance = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFinishTime(t *testing.T) {
	job := newTestJob(1, 1)
	created := ago(time.Hour)
	cases := map[string]struct {
		pod  *v1.Pod
		want time.Time
	}{
		"latest container exit": {
			pod: func() *v1.Pod {
				p := newTestPod(job, "p", v1.PodFailed, finishedAt(ago(3*time.Second)))
				p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, v1.ContainerStatus{Name: "b", State: v1.ContainerState{
					Terminated: &v1.ContainerStateTerminated{FinishedAt: metav1.NewTime(ago(2 * time.Second))}}})
				return p
			}(),
			want: ago(2 * time.Second),
		},
		"a container without exit: the Ready=False time": {
			pod: func() *v1.Pod {
				p := newTestPod(job, "p", v1.PodFailed)
				p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "main"}}
				p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: metav1.NewTime(ago(7 * time.Second))}}
				return p
			}(),
			want: ago(7 * time.Second),
		},
		"deleted: the deletion minus grace": {
			pod: func() *v1.Pod {
				p := newTestPod(job, "p", v1.PodRunning)
				p.DeletionTimestamp = ptr.To(metav1.NewTime(ago(10 * time.Second)))
				p.DeletionGracePeriodSeconds = ptr.To[int64](30)
				return p
			}(),
			want: ago(40 * time.Second),
		},
		"else its creation": {
			pod:  newTestPod(job, "p", v1.PodFailed, func(p *v1.Pod) { p.Status.ContainerStatuses = nil }),
			want: created,
		},
		"a sidecar that still runs leaves it unknown": {
			pod: func() *v1.Pod {
				p := newTestPod(job, "p", v1.PodFailed, finishedAt(ago(3*time.Second)))
				always := v1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []v1.Container{{Name: "side", RestartPolicy: &always}}
				p.Status.InitContainerStatuses = []v1.ContainerStatus{{Name: "side"}}
				return p
			}(),
			want: created,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := finishTime(tc.pod); !got.Equal(tc.want) {
				t.Errorf("finishTime = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSortForDeletion(t *testing.T) {
	job := newTestJob(1, 1)
	readyAt := func(at time.Time) podOpt {
		return func(p *v1.Pod) {
			p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
		}
	}
	pods := []*v1.Pod{
		newTestPod(job, "running-ready-long", v1.PodRunning, readyAt(ago(time.Hour))),
		newTestPod(job, "running-ready-short", v1.PodRunning, readyAt(ago(time.Minute))),
		newTestPod(job, "running-old", v1.PodRunning, createdAt(ago(2*time.Hour))),
		newTestPod(job, "running-young", v1.PodRunning, createdAt(ago(time.Minute))),
		newTestPod(job, "running-restarts", v1.PodRunning, restartCount(3)),
		newTestPod(job, "unknown", v1.PodUnknown),
		newTestPod(job, "pending", v1.PodPending),
		newTestPod(job, "unscheduled", v1.PodPending, unscheduled),
	}
	sortForDeletion(pods)
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"unscheduled", "pending", "unknown", "running-restarts", "running-young", "running-old", "running-ready-short", "running-ready-long"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deletion order (-want +got):\n%s", diff)
	}
}

func TestIndexedNamePrefix(t *testing.T) {
	long := strings.Repeat("a", 63)
	cases := map[string]struct {
		job  string
		ix   int
		want string
	}{
		"short": {job: "pi", ix: 7, want: "pi-7-"},
		"long":  {job: long, ix: 12, want: strings.Repeat("a", 54) + "-12-"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := indexedNamePrefix(tc.job, tc.ix)
			if got != tc.want || len(got) > maxGenerateNameLength {
				t.Errorf("prefix = %q (%d), want %q", got, len(got), tc.want)
			}
		})
	}
}

func TestSuccessPolicyMet(t *testing.T) {
	set := func(s string) indexSet { v, _ := parseIndexSet(s, 100); return v }
	rule := func(indexes string, count int32) batch.SuccessPolicyRule {
		var r batch.SuccessPolicyRule
		if indexes != "" {
			r.SucceededIndexes = ptr.To(indexes)
		}
		if count > 0 {
			r.SucceededCount = ptr.To(count)
		}
		return r
	}
	cases := map[string]struct {
		rules     []batch.SuccessPolicyRule
		succeeded string
		want      string
	}{
		"all listed indexes":          {rules: []batch.SuccessPolicyRule{rule("0-2", 0)}, succeeded: "0-3", want: "Matched rules at index 0"},
		"listed indexes missing one":  {rules: []batch.SuccessPolicyRule{rule("0-2", 0)}, succeeded: "0,2"},
		"count within the list":       {rules: []batch.SuccessPolicyRule{rule("0-4", 2)}, succeeded: "1,3", want: "Matched rules at index 0"},
		"count outside does not help": {rules: []batch.SuccessPolicyRule{rule("0-1", 2)}, succeeded: "1,5"},
		"count alone":                 {rules: []batch.SuccessPolicyRule{rule("", 3)}, succeeded: "7-9", want: "Matched rules at index 0"},
		"second rule":                 {rules: []batch.SuccessPolicyRule{rule("5", 0), rule("", 1)}, succeeded: "2", want: "Matched rules at index 1"},
		"nothing succeeded":           {rules: []batch.SuccessPolicyRule{rule("", 1)}, succeeded: ""},
		"unparsable rule is skipped":  {rules: []batch.SuccessPolicyRule{rule("x", 0), rule("", 1)}, succeeded: "0", want: "Matched rules at index 1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, ok := successPolicyMet(&batch.SuccessPolicy{Rules: tc.rules}, 10, set(tc.succeeded))
			if ok != (tc.want != "") || msg != tc.want {
				t.Errorf("successPolicyMet = %q %v, want %q", msg, ok, tc.want)
			}
		})
	}
}

func TestJudgeFailure(t *testing.T) {
	job := newTestJob(1, 1)
	init := func(code int32) podOpt {
		return func(p *v1.Pod) {
			p.Status.InitContainerStatuses = []v1.ContainerStatus{{Name: "setup", State: v1.ContainerState{
				Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}}
		}
	}
	exitRule := func(action batch.PodFailurePolicyAction, op batch.PodFailurePolicyOnExitCodesOperator, container string, codes ...int32) batch.PodFailurePolicyRule {
		r := batch.PodFailurePolicyRule{Action: action, OnExitCodes: &batch.PodFailurePolicyOnExitCodesRequirement{Operator: op, Values: codes}}
		if container != "" {
			r.OnExitCodes.ContainerName = ptr.To(container)
		}
		return r
	}
	cases := map[string]struct {
		rules []batch.PodFailurePolicyRule
		pod   *v1.Pod
		want  failureVerdict
	}{
		"no rule matches": {
			rules: []batch.PodFailurePolicyRule{exitRule(batch.PodFailurePolicyActionIgnore, batch.PodFailurePolicyOnExitCodesOpIn, "", 9)},
			pod:   newTestPod(job, "p", v1.PodFailed),
			want:  failureVerdict{counts: true},
		},
		"exit code 0 never matches NotIn": {
			rules: []batch.PodFailurePolicyRule{exitRule(batch.PodFailurePolicyActionIgnore, batch.PodFailurePolicyOnExitCodesOpNotIn, "", 1)},
			pod:   newTestPod(job, "p", v1.PodFailed, exitCode(0)),
			want:  failureVerdict{counts: true},
		},
		"named container": {
			rules: []batch.PodFailurePolicyRule{exitRule(batch.PodFailurePolicyActionIgnore, batch.PodFailurePolicyOnExitCodesOpIn, "other", 1)},
			pod:   newTestPod(job, "p", v1.PodFailed),
			want:  failureVerdict{counts: true},
		},
		"init container exit code": {
			rules: []batch.PodFailurePolicyRule{exitRule(batch.PodFailurePolicyActionFailIndex, batch.PodFailurePolicyOnExitCodesOpIn, "setup", 5)},
			pod:   newTestPod(job, "p", v1.PodFailed, init(5)),
			want:  failureVerdict{action: batch.PodFailurePolicyActionFailIndex, counts: true},
		},
		"ignore": {
			rules: []batch.PodFailurePolicyRule{exitRule(batch.PodFailurePolicyActionIgnore, batch.PodFailurePolicyOnExitCodesOpIn, "", 1)},
			pod:   newTestPod(job, "p", v1.PodFailed),
			want:  failureVerdict{action: batch.PodFailurePolicyActionIgnore},
		},
		"a condition with the wrong status": {
			rules: []batch.PodFailurePolicyRule{{Action: batch.PodFailurePolicyActionIgnore, OnPodConditions: []batch.PodFailurePolicyOnPodConditionsPattern{{Type: v1.DisruptionTarget, Status: v1.ConditionFalse}}}},
			pod:   newTestPod(job, "p", v1.PodFailed, podCondition(v1.DisruptionTarget)),
			want:  failureVerdict{counts: true},
		},
		"an unknown action is skipped": {
			rules: []batch.PodFailurePolicyRule{
				exitRule("Explode", batch.PodFailurePolicyOnExitCodesOpIn, "", 1),
				exitRule(batch.PodFailurePolicyActionCount, batch.PodFailurePolicyOnExitCodesOpIn, "", 1),
			},
			pod:  newTestPod(job, "p", v1.PodFailed),
			want: failureVerdict{action: batch.PodFailurePolicyActionCount, counts: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := judgeFailure(&batch.PodFailurePolicy{Rules: tc.rules}, tc.pod)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(failureVerdict{})); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnnotationCount(t *testing.T) {
	job := newTestJob(1, 1)
	for text, want := range map[string]int32{"3": 3, "-1": 0, "x": 0, "99999999999": 0, fmt.Sprint(int64(1) << 31): 0, "2147483647": 2147483647} {
		p := newTestPod(job, "p", v1.PodFailed, annotated(batch.JobIndexFailureCountAnnotation, text))
		if got := indexFailures(p); got != want {
			t.Errorf("indexFailures(%q) = %d, want %d", text, got, want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	job := newTestJob(1, 1)
	if got := RetryDelay(job, 3); got != 40*time.Second {
		t.Errorf("RetryDelay(3) = %v, want 40s", got)
	}
	job.Annotations = map[string]string{BackoffBaseAnnotation: "1m", BackoffMaxAnnotation: "90s"}
	if got := RetryDelay(job, 2); got != 90*time.Second {
		t.Errorf("RetryDelay(2) with annotations = %v, want 90s", got)
	}
}

package job

import (
	"fmt"
	"slices"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
)

// failureVerdict is what a Job's podFailurePolicy says about one failed pod.
type failureVerdict struct {
	// action is the matched rule's action; empty when no rule matched.
	action batch.PodFailurePolicyAction
	// counts is false only for an Ignore rule: the failure does not count
	// toward backoffLimit nor backoffLimitPerIndex.
	counts bool
	// failJob is the Job failure message of a FailJob rule.
	failJob string
}

// judgeFailure matches a failed pod against the rules in order; the first
// matching rule decides. Without a policy every failure counts.
func judgeFailure(policy *batch.PodFailurePolicy, p *v1.Pod) failureVerdict {
	if policy == nil {
		return failureVerdict{counts: true}
	}
	for i, rule := range policy.Rules {
		var failJob string
		switch {
		case rule.OnExitCodes != nil:
			failJob = exitCodeMatch(p, rule, i)
		case rule.OnPodConditions != nil:
			failJob = podConditionMatch(p, rule, i)
		}
		if failJob == "" {
			continue
		}
		switch rule.Action {
		case batch.PodFailurePolicyActionIgnore:
			return failureVerdict{action: rule.Action}
		case batch.PodFailurePolicyActionFailJob:
			return failureVerdict{action: rule.Action, counts: true, failJob: failJob}
		case batch.PodFailurePolicyActionFailIndex, batch.PodFailurePolicyActionCount:
			return failureVerdict{action: rule.Action, counts: true}
		}
		// An action this controller does not know: the rule does not apply.
	}
	return failureVerdict{counts: true}
}

// exitCodeMatch finds the first terminated container, regular containers
// before init containers, whose non-zero exit code satisfies the exit code
// requirement of rule i, and returns the FailJob message for it; "" if none.
func exitCodeMatch(p *v1.Pod, rule batch.PodFailurePolicyRule, i int) string {
	req := rule.OnExitCodes
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for k := range list {
			s := &list[k]
			t := s.State.Terminated
			if t == nil || t.ExitCode == 0 || (req.ContainerName != nil && *req.ContainerName != s.Name) {
				continue
			}
			in := slices.Contains(req.Values, t.ExitCode)
			if (req.Operator == batch.PodFailurePolicyOnExitCodesOpIn && in) ||
				(req.Operator == batch.PodFailurePolicyOnExitCodesOpNotIn && !in) {
				return fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
					s.Name, p.Namespace, p.Name, t.ExitCode, rule.Action, i)
			}
		}
	}
	return ""
}

// podConditionMatch finds the first pod condition, in the pod's order, that
// equals one of the condition patterns of rule i, and returns the FailJob
// message for it; "" if none.
func podConditionMatch(p *v1.Pod, rule batch.PodFailurePolicyRule, i int) string {
	for _, c := range p.Status.Conditions {
		for _, want := range rule.OnPodConditions {
			if c.Type == want.Type && c.Status == want.Status {
				return fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d",
					p.Namespace, p.Name, c.Type, rule.Action, i)
			}
		}
	}
	return ""
}

// successPolicyMet checks the rules of an Indexed Job's successPolicy against
// the succeeded indexes and returns the message of the first rule met.
func successPolicyMet(policy *batch.SuccessPolicy, completions int, succeeded indexSet) (string, bool) {
	if policy == nil || len(succeeded) == 0 {
		return "", false
	}
	for i, rule := range policy.Rules {
		met := false
		if rule.SucceededIndexes != nil {
			wanted, _ := parseIndexSet(*rule.SucceededIndexes, completions)
			if len(wanted) == 0 {
				continue
			}
			got := wanted.overlap(succeeded)
			met = got == wanted.count() || (rule.SucceededCount != nil && got >= int(*rule.SucceededCount))
		} else if rule.SucceededCount != nil {
			met = succeeded.count() >= int(*rule.SucceededCount)
		}
		if met {
			return fmt.Sprintf("Matched rules at index %d", i), true
		}
	}
	return "", false
}

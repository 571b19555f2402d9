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
			c := exitCodeMatch(p, rule.OnExitCodes)
			if c == nil {
				continue
			}
			failJob = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
				c.Name, p.Namespace, p.Name, c.State.Terminated.ExitCode, rule.Action, i)
		case rule.OnPodConditions != nil:
			cond := podConditionMatch(p, rule.OnPodConditions)
			if cond == "" {
				continue
			}
			failJob = fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d",
				p.Namespace, p.Name, cond, rule.Action, i)
		default:
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

// exitCodeMatch returns the first terminated container, regular containers
// before init containers, whose non-zero exit code satisfies the requirement.
func exitCodeMatch(p *v1.Pod, req *batch.PodFailurePolicyOnExitCodesRequirement) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			s := &list[i]
			t := s.State.Terminated
			if t == nil || t.ExitCode == 0 || (req.ContainerName != nil && *req.ContainerName != s.Name) {
				continue
			}
			in := slices.Contains(req.Values, t.ExitCode)
			if (req.Operator == batch.PodFailurePolicyOnExitCodesOpIn && in) ||
				(req.Operator == batch.PodFailurePolicyOnExitCodesOpNotIn && !in) {
				return s
			}
		}
	}
	return nil
}

// podConditionMatch returns the type of the first pod condition, in the
// pod's order, that equals one of the patterns.
func podConditionMatch(p *v1.Pod, patterns []batch.PodFailurePolicyOnPodConditionsPattern) v1.PodConditionType {
	for _, c := range p.Status.Conditions {
		for _, want := range patterns {
			if c.Type == want.Type && c.Status == want.Status {
				return c.Type
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

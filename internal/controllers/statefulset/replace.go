package statefulset

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"

	"quartet.dev/quartet/internal/controllers/kit"
)

// ReplaceUnreadyAfterAnnotation opts a StatefulSet into replacing pods of an
// outdated revision that have not been Ready for the given Go duration ("2m").
// Upstream leaves such a rollout stuck until someone deletes the broken pod by
// hand (kubernetes/kubernetes#67250): an OrderedReady set waits for the pod to
// become Ready, which a pod of a broken template never does, even after the
// template is fixed.
const ReplaceUnreadyAfterAnnotation = "quartet.dev/replace-unready-after"

// notice is an event the controller records once per key for a set, rather
// than at every sync while the situation lasts.
type notice struct {
	key string
	kit.Event
}

// unreadySince is when pod last stopped being Ready: the Ready condition's
// transition time, or the pod's creation when it never reported one.
func unreadySince(pod *v1.Pod) time.Time {
	if c := kit.ReadyCondition(pod); c != nil && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	return pod.CreationTimestamp.Time
}

// replaceUnready is the stage of the extension. It picks the pods the
// extension deletes in this sync: pods at or above the partition, of a
// revision other than the update revision, not Ready for at least the
// annotation's duration, and not already finished or terminating. Each
// replacement is one more unavailable pod while it is recreated, so the pods
// unavailable for other reasons and the replacements together stay within
// maxUnavailable; when they leave no room, a notice says so. An OrderedReady
// set replaces the lowest such pod first, the one its ordered rollout waits
// on; a Parallel set the highest, as its rolling update does. Only
// RollingUpdate sets take part: OnDelete leaves every replacement to the user.
func (pl *planner) replaceUnready() {
	set, in := pl.set, pl.in
	raw, ok := set.Annotations[ReplaceUnreadyAfterAnnotation]
	if !ok {
		return
	}
	after, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil || after <= 0 {
		pl.d.invalidReplaceAfter = raw
		return
	}
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return
	}
	budget := 1
	if in.maxUnavailable {
		if budget, err = resolveMaxUnavailable(set); err != nil {
			return
		}
	}
	partition := partitionOf(set)

	var due []int
	otherUnavailable := 0
	// heldBack: an OrderedReady set creates no pod above an outdated unready
	// one, so the pods missing above it wait for its replacement and do not
	// count against it.
	heldBack := false
	for i, pod := range pl.replicas {
		outdatedUnready := i >= partition && podExists(pod) && !isTerminating(pod) && !podutil.IsPodTerminal(pod) &&
			revisionOf(pod) != in.update.Name && !kit.IsReady(pod)
		if outdatedUnready {
			heldBack = pl.ordered
			if wait := unreadySince(pod).Add(after).Sub(in.now); wait > 0 {
				if pl.d.requeueAfter == 0 || wait < pl.d.requeueAfter { // 0: no look asked for yet
					pl.d.requeueAfter = wait
				}
			} else {
				due = append(due, i)
				continue
			}
		}
		if heldBack && !podExists(pod) {
			continue
		}
		if isUnavailable(pod, pl.minReady, in.now) {
			otherUnavailable++
		}
	}
	if !pl.ordered {
		slices.Reverse(due)
	}
	replace := stage{name: "replace-unready"}
	defer func() { pl.d.addStage(replace) }()
	for _, i := range due {
		pod := pl.replicas[i]
		unready := fmt.Sprintf("Pod %s of outdated revision %s has not been Ready for %s (%s is %s)",
			pod.Name, revisionOf(pod), in.now.Sub(unreadySince(pod)).Round(time.Second), ReplaceUnreadyAfterAnnotation, raw)
		if len(replace.units) >= budget-otherUnavailable {
			if len(replace.units) == 0 {
				pl.d.notices = append(pl.d.notices, notice{key: deferredKey(pod, in), Event: kit.Event{
					Type: v1.EventTypeNormal, Reason: reasonUnreadyPodNotReplaced, Message: fmt.Sprintf(
						"%s but is not replaced yet: %d other pod(s) are unavailable and maxUnavailable is %d", unready, otherUnavailable, budget)}})
			}
			return
		}
		pl.replacing[pod.Name] = true
		replace.units = append(replace.units, []podTask{{
			kind:    taskDelete,
			pod:     pod,
			rollout: countedCurrent(pod, in.current.Name),
			note: &kit.Event{Type: v1.EventTypeNormal, Reason: reasonReplacingUnreadyPod, Message: fmt.Sprintf(
				"%s; deleting it so that it is recreated at revision %s", unready, in.update.Name)},
		}})
	}
}

// deferredKey is the key of the notice that pod, past the annotation's
// duration, is not replaced yet, recorded once per pod and update revision.
func deferredKey(pod *v1.Pod, in observed) string {
	return "deferred/" + pod.Name + "/" + in.update.Name
}

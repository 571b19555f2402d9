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

// replacement is what the replace-unready-after extension does in one sync.
type replacement struct {
	units        [][]podTask
	replacing    map[string]bool
	requeueAfter time.Duration
	// invalid is the annotation's value when it is not a positive duration.
	invalid string
	// deferred explains why no pod past the duration is replaced (the pods
	// unavailable for other reasons use up maxUnavailable); nil when one is.
	deferred *notice
	// deferredPod is the pod deferred is about.
	deferredPod string
}

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

// planReplaceUnready picks the pods the extension deletes in this sync:
// pods at or above the partition, of a revision other than the update
// revision, not Ready for at least the annotation's duration, and not already
// finished or terminating. Each replacement is one more unavailable pod while
// it is recreated, so the pods that are unavailable for other reasons and the
// replacements together stay within maxUnavailable. An OrderedReady set
// replaces the lowest such pod first, the one its ordered rollout waits on; a
// Parallel set the highest, as its rolling update does. Only RollingUpdate
// sets take part: OnDelete leaves every replacement to the user.
func planReplaceUnready(set *appsv1.StatefulSet, replicas []*v1.Pod, in observed, ordered bool) replacement {
	var r replacement
	raw, ok := set.Annotations[ReplaceUnreadyAfterAnnotation]
	if !ok {
		return r
	}
	after, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil || after <= 0 {
		r.invalid = raw
		return r
	}
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return r
	}
	budget := 1
	if in.maxUnavailable {
		if budget, err = resolveMaxUnavailable(set); err != nil {
			return r
		}
	}
	partition := int(partitionOf(set.Spec.UpdateStrategy.RollingUpdate))
	minReady := set.Spec.MinReadySeconds

	var due []int
	otherUnavailable := 0
	// heldBack: an OrderedReady set creates no pod above an outdated unready
	// one, so the pods missing above it wait for its replacement and do not
	// count against it.
	heldBack := false
	for i, pod := range replicas {
		outdatedUnready := i >= partition && podExists(pod) && !isTerminating(pod) && !podutil.IsPodTerminal(pod) &&
			revisionOf(pod) != in.update.Name && !kit.IsReady(pod)
		if outdatedUnready {
			heldBack = ordered
			if wait := unreadySince(pod).Add(after).Sub(in.now); wait > 0 {
				r.requeueAfter = earliest(r.requeueAfter, wait)
			} else {
				due = append(due, i)
				continue
			}
		}
		if heldBack && !podExists(pod) {
			continue
		}
		if isUnavailable(pod, minReady, in.now) {
			otherUnavailable++
		}
	}
	if !ordered {
		slices.Reverse(due)
	}
	r.replacing = map[string]bool{}
	for _, i := range due {
		pod := replicas[i]
		unready := fmt.Sprintf("Pod %s of outdated revision %s has not been Ready for %s (%s is %s)",
			pod.Name, revisionOf(pod), in.now.Sub(unreadySince(pod)).Round(time.Second), ReplaceUnreadyAfterAnnotation, raw)
		if len(r.units) >= budget-otherUnavailable {
			if len(r.units) == 0 {
				// Recorded once per pod and update revision.
				r.deferred = &notice{key: "deferred/" + pod.Name + "/" + in.update.Name, Event: kit.Event{
					Type: v1.EventTypeNormal, Reason: reasonUnreadyPodNotReplaced, Message: fmt.Sprintf(
						"%s but is not replaced yet: %d other pod(s) are unavailable and maxUnavailable is %d", unready, otherUnavailable, budget)}}
				r.deferredPod = pod.Name
			}
			break
		}
		r.replacing[pod.Name] = true
		r.units = append(r.units, []podTask{{
			kind:    taskDelete,
			pod:     pod,
			rollout: countedCurrent(pod, in.current.Name),
			note: &kit.Event{Type: v1.EventTypeNormal, Reason: reasonReplacingUnreadyPod, Message: fmt.Sprintf(
				"%s; deleting it so that it is recreated at revision %s", unready, in.update.Name)},
		}})
	}
	return r
}

package statefulset

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
)

// Event reasons. The first two are upstream's; with upstream's messages in
// podEvent and claimEvent, `kubectl describe sts` and `kubectl get events`
// read the same with either implementation.
const (
	reasonConflictingController = "ConflictingController"
	reasonUnknownStrategy       = "UnknownStrategy"

	// The others are quartet's, for the replace-unready-after extension: a pod
	// it deletes, its annotation ignored as not a positive duration, and a pod
	// it would replace that waits while other unavailable pods use up
	// maxUnavailable.
	reasonReplacingUnreadyPod        = "ReplacingUnreadyPod"
	reasonInvalidReplaceUnreadyAfter = "InvalidReplaceUnreadyAfter"
	reasonUnreadyPodNotReplaced      = "UnreadyPodNotReplaced"
)

// verb is what was done to a pod or claim, as the events name it. As in
// upstream's recordPodEvent and recordClaimEvent, the reason of the outcome is
// the verb after "Successful" or "Failed" (SuccessfulCreate, FailedDelete).
type verb string

const (
	verbCreate verb = "Create"
	verbUpdate verb = "Update"
	verbDelete verb = "Delete"
)

// podEvent records the outcome of doing v to pod: "Create Pod web-0 in
// StatefulSet web successful", or a warning that carries err.
func podEvent(rec record.EventRecorder, set *appsv1.StatefulSet, v verb, pod string, err error) {
	if err == nil {
		rec.Event(set, v1.EventTypeNormal, "Successful"+string(v), fmt.Sprintf("%s Pod %s in StatefulSet %s successful", v, pod, set.Name))
		return
	}
	rec.Event(set, v1.EventTypeWarning, "Failed"+string(v), fmt.Sprintf("%s Pod %s in StatefulSet %s failed error: %s", v, pod, set.Name, err))
}

// claimEvent records the outcome of doing v to a pod's claim: "Create Claim
// data-web-0 Pod web-0 in StatefulSet web success", or a warning with err.
func claimEvent(rec record.EventRecorder, set *appsv1.StatefulSet, v verb, claim, pod string, err error) {
	if err == nil {
		rec.Event(set, v1.EventTypeNormal, "Successful"+string(v), fmt.Sprintf("%s Claim %s Pod %s in StatefulSet %s success", v, claim, pod, set.Name))
		return
	}
	rec.Event(set, v1.EventTypeWarning, "Failed"+string(v), fmt.Sprintf("%s Claim %s for Pod %s in StatefulSet %s failed error: %s", v, claim, pod, set.Name, err))
}

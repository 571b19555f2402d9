package statefulset

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// taskKind is what one task does for one pod.
type taskKind string

const (
	// taskCreate creates the pod's missing claims, then the pod, then sets
	// the owner references of its existing claims.
	taskCreate taskKind = "Create"
	// taskClaims, for a Pending pod, creates claims that have gone missing
	// and brings claim owner references in line with the retention policy.
	taskClaims taskKind = "Claims"
	// taskConform restores a pod's identity labels and volumes and its
	// claims' owner references.
	taskConform taskKind = "Conform"
	// taskOwners brings the claims of a pod that is about to be scaled away
	// in line with the retention policy.
	taskOwners taskKind = "Owners"
	// taskDelete deletes the pod.
	taskDelete taskKind = "Delete"
)

// ownerChange is what one claim of a pod needs for the retention policy.
type ownerChange struct {
	claim string
	// foreign: another controller owns the claim; the policy does not apply
	// and a ConflictingController warning is recorded.
	foreign bool
	// update is the claim with the owner references it should have, or nil
	// when they are right.
	update *v1.PersistentVolumeClaim
}

// podTask is one step of a sync for one pod.
type podTask struct {
	kind taskKind
	// pod is the pod to create, the pod to write (taskConform), or the cached
	// pod the task is about.
	pod *v1.Pod
	// newClaims are claims to create; deletingClaims name existing claims
	// that are being deleted, which the pod must wait for.
	newClaims      []*v1.PersistentVolumeClaim
	deletingClaims []string
	owners         []ownerChange
	// writePod: taskConform changed the pod itself, so it must be written.
	writePod bool
	// rollout: a taskDelete of a rolling update, which counts the pod out of
	// status.currentReplicas once it succeeds.
	rollout bool
	// note is an event recorded just before the task runs.
	note *kit.Event
}

// stage is a group of pod tasks. Each unit holds one pod's tasks, which run in
// order and stop at the first error. A batched stage runs its units in
// slow-start batches of growing size; otherwise units run one after another.
// A stage in which any task fails ends the sync.
type stage struct {
	name    string
	batched bool
	units   [][]podTask
}

// decision is everything one sync of a StatefulSet does.
type decision struct {
	// events are recorded before any task runs.
	events []kit.Event
	stages []stage
	// status is the status to write, before the rolling-update deletions
	// that succeed are subtracted from currentReplicas; nil writes none.
	status *appsv1.StatefulSetStatus
	// err is returned from the sync after the writes (an unknown update
	// strategy, an unparsable maxUnavailable).
	err error
	// requeueAfter asks for another sync that soon (minReadySeconds,
	// replace-unready-after).
	requeueAfter time.Duration
	// invalidReplaceAfter is the unparsable value of the
	// replace-unready-after annotation, if any.
	invalidReplaceAfter string
	// notices are events recorded once per key for the set.
	notices []notice
}

// observed is what a sync knows when it decides.
type observed struct {
	set *appsv1.StatefulSet
	// pods are the pods the set owns (after adoption and release).
	pods []*v1.Pod
	// claims are the cached claims of the set's ordinals and pods, by name.
	claims          map[string]*v1.PersistentVolumeClaim
	current, update *appsv1.ControllerRevision
	collisionCount  int32
	now             time.Time
	// maxUnavailable is the MaxUnavailableStatefulSet feature gate (beta, on
	// by default in 1.37): without it rolling updates replace one pod at a
	// time.
	maxUnavailable bool
	// recreate is the StatefulSetRecreateStrategy feature gate.
	recreate bool
}

// claimView is the claims of the namespace as the plan goes: the cached
// claims, with the owner-reference updates planned so far applied, and the
// names of claims the plan creates.
type claimView struct {
	cached  map[string]*v1.PersistentVolumeClaim
	updated map[string]*v1.PersistentVolumeClaim
	created map[string]bool
}

func (v *claimView) get(name string) *v1.PersistentVolumeClaim {
	return cmp.Or(v.updated[name], v.cached[name])
}

// toCreate returns the claims of pod that exist nowhere yet and the names of
// those being deleted, and marks the former as created.
func (v *claimView) toCreate(set *appsv1.StatefulSet, pod *v1.Pod) (create []*v1.PersistentVolumeClaim, deleting []string) {
	for _, claim := range claimsFor(set, pod) {
		switch existing := v.get(claim.Name); {
		case existing != nil && existing.DeletionTimestamp != nil:
			deleting = append(deleting, claim.Name)
		case existing == nil && !v.created[claim.Name]:
			v.created[claim.Name] = true
			create = append(create, claim)
		}
	}
	return create, deleting
}

// ownersCurrent reports whether every existing claim of pod has the owner
// references set's retention policy wants.
func (v *claimView) ownersCurrent(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		claim := v.get(claimNameFor(set, tmpl.Name, ordinalOf(pod)))
		if claim != nil && !claimOwnersCurrent(claim, set, pod) {
			return false
		}
	}
	return true
}

// ownerChanges plans the owner-reference updates of pod's existing claims and
// records them in the view.
func (v *claimView) ownerChanges(set *appsv1.StatefulSet, pod *v1.Pod) []ownerChange {
	var changes []ownerChange
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		name := claimNameFor(set, tmpl.Name, ordinalOf(pod))
		claim := v.get(name)
		if claim == nil {
			continue
		}
		change := ownerChange{claim: name, foreign: foreignController(claim, set, pod)}
		if !claimOwnersCurrent(claim, set, pod) {
			change.update = withPolicyOwners(claim, set, pod)
			v.updated[name] = change.update
		}
		if change.foreign || change.update != nil {
			changes = append(changes, change)
		}
	}
	return changes
}

// decide is the decision of one sync of a StatefulSet: which pods to create,
// conform and delete, in which order, which claims to create and re-own, the
// status to write and when to look again. It reads nothing but in.
func decide(in observed) (*decision, error) {
	set := in.set
	currentSet, err := restoreRevision(set, in.current)
	if err != nil {
		return nil, err
	}
	updateSet := currentSet
	if in.update.Name != in.current.Name {
		if updateSet, err = restoreRevision(set, in.update); err != nil {
			return nil, err
		}
	}
	if set.Spec.UpdateStrategy.Type == appsv1.RecreateStatefulSetStrategyType {
		msg := fmt.Sprintf("statefulset %s/%s uses Recreate strategy but feature gate StatefulSetRecreateStrategy is disabled", set.Namespace, set.Name)
		if in.recreate {
			msg = fmt.Sprintf("statefulset %s/%s uses Recreate strategy, which quartet does not implement", set.Namespace, set.Name)
		}
		unknown := kit.Event{Type: v1.EventTypeWarning, Reason: reasonUnknownStrategy, Message: msg}
		return &decision{events: []kit.Event{unknown}, err: errors.New(msg)}, nil
	}
	d := &decision{status: &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    in.current.Name,
		UpdateRevision:     in.update.Name,
		CollisionCount:     &in.collisionCount,
		Conditions:         append([]appsv1.StatefulSetCondition(nil), set.Status.Conditions...),
	}}
	pl := newPlanner(in, d, currentSet, updateSet)
	if set.DeletionTimestamp != nil {
		*d.status = countPods(*d.status, pl.minReady, in.now, in.pods)
		d.requeueAfter = nextAvailabilityCheck(set, d.status, in.pods, in.now)
		return d, nil
	}
	*d.status = countPods(*d.status, pl.minReady, in.now, pl.replicas, pl.condemned)
	d.requeueAfter = nextAvailabilityCheck(set, d.status, in.pods, in.now)
	pl.replaceUnready()
	if pl.bringUpReplicas() && pl.scaleDown() && set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		pl.rollOut()
	}
	return d, nil
}

// planner builds one decision, stage by stage.
type planner struct {
	in       observed
	d        *decision
	set      *appsv1.StatefulSet
	ordered  bool
	minReady int32
	view     *claimView
	// replicas are the pods of the ordinals the set wants, in order, built
	// for those that are missing; condemned are the pods of other ordinals,
	// highest first.
	replicas, condemned []*v1.Pod
	// replacing are the pods the replace-unready stage deletes.
	replacing map[string]bool
}

func newPlanner(in observed, d *decision, currentSet, updateSet *appsv1.StatefulSet) *planner {
	set := in.set
	pl := &planner{
		in:        in,
		d:         d,
		set:       set,
		ordered:   set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement,
		minReady:  set.Spec.MinReadySeconds,
		view:      &claimView{cached: in.claims, updated: map[string]*v1.PersistentVolumeClaim{}, created: map[string]bool{}},
		replacing: map[string]bool{},
	}
	start, count := firstOrdinal(set), replicaCount(set)
	pl.replicas = make([]*v1.Pod, count)
	for _, pod := range in.pods {
		switch ord := ordinalOf(pod); {
		case ord >= start && ord < start+count:
			pl.replicas[ord-start] = pod
		case ord >= 0:
			pl.condemned = append(pl.condemned, pod)
		}
	}
	// A missing ordinal's pod is made at the current revision below the
	// partition and at the update revision from it on. With updateStrategy
	// RollingUpdate but no rollingUpdate block, the first
	// status.currentReplicas stay at the current revision; with OnDelete every
	// new pod is at the update revision.
	atCurrent := partitionOf(set)
	if set.Spec.UpdateStrategy.RollingUpdate == nil && set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		atCurrent = int(set.Status.CurrentReplicas)
	}
	for i, pod := range pl.replicas {
		switch {
		case pod != nil:
		case i < atCurrent:
			pl.replicas[i] = newPod(currentSet, start+i, in.current.Name)
		default:
			pl.replicas[i] = newPod(updateSet, start+i, in.update.Name)
		}
	}
	slices.SortStableFunc(pl.condemned, func(a, b *v1.Pod) int { return cmp.Compare(ordinalOf(b), ordinalOf(a)) })
	return pl
}

// bringUpReplicas brings each wanted ordinal into being and into shape.
// OrderedReady stops at the first pod that is not Running, Ready and
// available; it then reports false, and the sync goes no further.
func (pl *planner) bringUpReplicas() bool {
	live := stage{name: "replicas", batched: !pl.ordered}
	defer func() { pl.d.addStage(live) }()
	for _, pod := range pl.replicas {
		tasks, blocks := replicaTasks(pl.set, pod, pl.view, pl.ordered, pl.in.now)
		if len(tasks) > 0 {
			live.units = append(live.units, tasks)
		}
		if blocks && pl.ordered {
			return false
		}
	}
	return true
}

// scaleDown brings the claims of the pods being scaled away in line with the
// retention policy, then deletes those pods, highest ordinal first.
// OrderedReady removes one pod per sync and waits for it to be gone; it will
// not remove a pod while a lower one is unhealthy, except the lowest
// unhealthy pod itself. It reports whether the sync goes on.
func (pl *planner) scaleDown() bool {
	owners := stage{name: "condemned-claims", batched: !pl.ordered}
	for _, pod := range pl.condemned {
		if !pl.view.ownersCurrent(pl.set, pod) {
			owners.units = append(owners.units, []podTask{{kind: taskOwners, pod: pod, owners: pl.view.ownerChanges(pl.set, pod)}})
		}
	}
	pl.d.addStage(owners)

	down := stage{name: "scale-down", batched: !pl.ordered}
	defer func() { pl.d.addStage(down) }()
	firstUnhealthy := pl.firstUnhealthy()
	for _, pod := range pl.condemned {
		switch {
		case isTerminating(pod):
		case pl.ordered && pod != firstUnhealthy && (!isRunningAndReady(pod) || !kit.IsAvailable(pod, pl.minReady, pl.in.now)):
		default:
			down.units = append(down.units, []podTask{{kind: taskDelete, pod: pod}})
		}
		if pl.ordered {
			return false
		}
	}
	return true
}

// firstUnhealthy is the lowest unavailable pod, replicas before condemned:
// an ordered scale-down may remove it even though it is unhealthy.
func (pl *planner) firstUnhealthy() *v1.Pod {
	for _, pod := range pl.replicas {
		if isUnavailable(pod, pl.minReady, pl.in.now) {
			return pod
		}
	}
	for i := len(pl.condemned) - 1; i >= 0; i-- {
		if isUnavailable(pl.condemned[i], pl.minReady, pl.in.now) {
			return pl.condemned[i]
		}
	}
	return nil
}

// rollOut is the rolling update's stage: the outdated pods it deletes.
func (pl *planner) rollOut() {
	var rollout []*v1.Pod
	if pl.in.maxUnavailable {
		rollout, pl.d.err = rolloutVictims(pl.set, pl.replicas, pl.in.update.Name, pl.ordered, pl.in.now)
	} else {
		rollout = rolloutVictimOneAtATime(pl.set, pl.replicas, pl.in.update.Name, pl.in.now)
	}
	update := stage{name: "rolling-update"}
	for _, pod := range rollout {
		// A replacement deferred, if any, is done by the rolling update after all.
		pl.d.notices = slices.DeleteFunc(pl.d.notices, func(n notice) bool { return n.key == deferredKey(pod, pl.in) })
		if pl.replacing[pod.Name] {
			continue
		}
		update.units = append(update.units, []podTask{{kind: taskDelete, pod: pod, rollout: countedCurrent(pod, pl.in.current.Name)}})
	}
	pl.d.addStage(update)
}

// countedCurrent reports whether pod is in status.currentReplicas, so that
// deleting it takes it out. (Upstream subtracts every rolling-update deletion,
// which can make currentReplicas negative, a status the apiserver rejects,
// when the deleted pod was at neither revision.)
func countedCurrent(pod *v1.Pod, currentRevision string) bool {
	return podExists(pod) && !isTerminating(pod) && revisionOf(pod) == currentRevision
}

func (d *decision) addStage(s stage) {
	if len(s.units) > 0 {
		d.stages = append(d.stages, s)
	}
}

func partitionOf(set *appsv1.StatefulSet) int {
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		return int(ptr.Deref(ru.Partition, 0))
	}
	return 0
}

// replicaTasks plans one wanted ordinal. blocks reports that an OrderedReady
// set must not look at higher ordinals in this sync.
func replicaTasks(set *appsv1.StatefulSet, pod *v1.Pod, view *claimView, ordered bool, now time.Time) (tasks []podTask, blocks bool) {
	// A pod that ran to completion or failed is deleted; the next sync,
	// after it is gone, creates it again with the same name and claims.
	if podutil.IsPodTerminal(pod) {
		if !isTerminating(pod) {
			tasks = append(tasks, podTask{kind: taskDelete, pod: pod})
		}
		return tasks, true
	}
	if !podExists(pod) {
		if claimIsStale(set, pod, view.cached) {
			return nil, true
		}
		// Owner references are set on claims that already exist; a claim
		// created now gets them in a later sync, once it is in the cache.
		t := podTask{kind: taskCreate, pod: pod, owners: view.ownerChanges(set, pod)}
		t.newClaims, t.deletingClaims = view.toCreate(set, pod)
		// A pod built this sync is already conformant, so a Parallel set
		// moves on to the next ordinal too.
		return append(tasks, t), true
	}
	if pod.Status.Phase == v1.PodPending {
		t := podTask{kind: taskClaims, pod: pod, owners: view.ownerChanges(set, pod)}
		t.newClaims, t.deletingClaims = view.toCreate(set, pod)
		if len(t.newClaims) > 0 || len(t.deletingClaims) > 0 || len(t.owners) > 0 {
			tasks = append(tasks, t)
		}
	}
	if ordered && (isTerminating(pod) || !isRunningAndReady(pod) || !kit.IsAvailable(pod, set.Spec.MinReadySeconds, now)) {
		return tasks, true
	}
	identity, storage := hasIdentity(set, pod), hasStorage(set, pod)
	if identity && storage && view.ownersCurrent(set, pod) {
		return tasks, false
	}
	t := podTask{kind: taskConform, pod: pod.DeepCopy(), writePod: !identity || !storage}
	if !identity {
		setIdentity(set, t.pod)
	}
	if !storage {
		setStorage(set, t.pod)
		t.newClaims, t.deletingClaims = view.toCreate(set, t.pod)
	}
	t.owners = view.ownerChanges(set, t.pod)
	return append(tasks, t), false
}

// resolveMaxUnavailable turns rollingUpdate.maxUnavailable into a pod count:
// 1 when unset, percentages of replicas rounded down, and never less than 1.
func resolveMaxUnavailable(set *appsv1.StatefulSet) (int, error) {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		return 1, nil
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicaCount(set), false)
	return max(n, 1), err
}

// rolloutVictims picks the pods a rolling update deletes in this sync, with
// maxUnavailable: outdated pods at or above the partition, highest ordinal
// first, while the count of unavailable pods stays within maxUnavailable. A
// Parallel set first replaces the outdated pods that are already
// unavailable, which costs no availability, and only then spends the budget.
func rolloutVictims(set *appsv1.StatefulSet, replicas []*v1.Pod, updateRevision string, ordered bool, now time.Time) ([]*v1.Pod, error) {
	budget, err := resolveMaxUnavailable(set)
	if err != nil {
		return nil, err
	}
	minReady := set.Spec.MinReadySeconds
	partition := partitionOf(set)
	outdated := func(pod *v1.Pod) bool { return revisionOf(pod) != updateRevision }

	unavailable := 0
	for _, pod := range replicas {
		if isUnavailable(pod, minReady, now) {
			unavailable++
		}
	}
	var victims []*v1.Pod
	if !ordered {
		for i := len(replicas) - 1; i >= partition; i-- {
			if pod := replicas[i]; outdated(pod) && !isTerminating(pod) && !kit.IsAvailable(pod, minReady, now) {
				victims = append(victims, pod)
			}
		}
	}
	free := len(victims) // replacing the pods already unavailable costs nothing
	for i := len(replicas) - 1; i >= partition && len(victims)-free < budget-unavailable; i-- {
		if pod := replicas[i]; outdated(pod) && !isTerminating(pod) && (ordered || kit.IsAvailable(pod, minReady, now)) {
			victims = append(victims, pod)
		}
	}
	return victims, nil
}

// rolloutVictimOneAtATime is the rolling update without maxUnavailable: from
// the highest ordinal down to the partition, delete the first outdated pod,
// but stop at an updated pod that is not yet available.
func rolloutVictimOneAtATime(set *appsv1.StatefulSet, replicas []*v1.Pod, updateRevision string, now time.Time) []*v1.Pod {
	for i := len(replicas) - 1; i >= partitionOf(set); i-- {
		pod := replicas[i]
		if revisionOf(pod) != updateRevision && !isTerminating(pod) {
			return []*v1.Pod{pod}
		}
		if isUnavailable(pod, set.Spec.MinReadySeconds, now) {
			return nil
		}
	}
	return nil
}

// countPods adds the pods that exist to the replica counts of status, which
// start at zero; a terminating pod counts as neither current nor updated.
func countPods(status appsv1.StatefulSetStatus, minReady int32, now time.Time, lists ...[]*v1.Pod) appsv1.StatefulSetStatus {
	for _, pods := range lists {
		for _, pod := range pods {
			if !podExists(pod) {
				continue
			}
			status.Replicas++
			if isRunningAndReady(pod) {
				status.ReadyReplicas++
				if kit.IsAvailable(pod, minReady, now) {
					status.AvailableReplicas++
				}
			}
			if isTerminating(pod) {
				continue
			}
			if revisionOf(pod) == status.CurrentRevision {
				status.CurrentReplicas++
			}
			if revisionOf(pod) == status.UpdateRevision {
				status.UpdatedReplicas++
			}
		}
	}
	return status
}

// finishStatus is the status a sync writes: status less the rolling-update
// deletions that succeeded and, once every replica is updated and ready, the
// update revision promoted to current.
func finishStatus(set *appsv1.StatefulSet, status appsv1.StatefulSetStatus, rolledOut int) appsv1.StatefulSetStatus {
	status.CurrentReplicas -= int32(rolledOut)
	want := int32(replicaCount(set))
	if status.UpdatedReplicas == want && status.ReadyReplicas == want && status.Replicas == want {
		status.CurrentReplicas = status.UpdatedReplicas
		status.CurrentRevision = status.UpdateRevision
	}
	return status
}

// nextAvailabilityCheck is how long until the next ready pod becomes
// available, when minReadySeconds keeps readyReplicas and availableReplicas
// apart; never more than minReadySeconds.
func nextAvailabilityCheck(set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus, pods []*v1.Pod, now time.Time) time.Duration {
	minReady := set.Spec.MinReadySeconds
	if minReady <= 0 || status.ReadyReplicas == status.AvailableReplicas {
		return 0
	}
	soonest := time.Duration(minReady) * time.Second
	for _, pod := range pods {
		if left := kit.AvailableIn(pod, minReady, now); left > 0 {
			soonest = min(soonest, left)
		}
	}
	return soonest
}

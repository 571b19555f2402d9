package statefulset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	appsdefaults "k8s.io/kubernetes/pkg/apis/apps/v1"
	"k8s.io/kubernetes/pkg/controller/history"
	"k8s.io/utils/lru"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// buildRevision is the ControllerRevision that records set's template as
// revision number number. Its name and hash label come from the data and
// collisionCount; it carries the template's labels and the set's annotations
// (kubectl rollout history shows kubernetes.io/change-cause from there).
func buildRevision(set *appsv1.StatefulSet, number int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	data, err := kit.TemplatePatch(&set.Spec.Template, json.Unmarshal)
	if err != nil {
		return nil, err
	}
	rev, err := history.NewControllerRevision(set, setKind, set.Spec.Template.Labels,
		runtime.RawExtension{Raw: data}, number, collisionCount)
	if err != nil {
		return nil, err
	}
	rev.Namespace = set.Namespace
	rev.Annotations = maps.Clone(set.Annotations)
	return rev, nil
}

// specOnly is the part of a StatefulSet a revision's patch applies to.
type specOnly struct {
	Spec appsv1.StatefulSetSpec `json:"spec"`
}

// restoreRevision returns a copy of set with rev's patch applied to its spec,
// which for StatefulSet revisions means with rev's pod template.
func restoreRevision(set *appsv1.StatefulSet, rev *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	spec, err := json.Marshal(specOnly{set.Spec})
	if err != nil {
		return nil, err
	}
	var restored specOnly
	merged, err := strategicpatch.StrategicMergePatch(spec, rev.Data.Raw, &appsv1.StatefulSet{})
	if err == nil {
		err = json.Unmarshal(merged, &restored)
	}
	if err != nil {
		return nil, fmt.Errorf("applying ControllerRevision %s: %w", rev.Name, err)
	}
	out := set.DeepCopy()
	out.Spec = restored.Spec
	return out, nil
}

// memoKey is a set's generation that restores to an existing revision,
// remembered in the controller's memo so that the comparison, which patches
// and defaults a whole set, runs once per generation, not per sync.
type memoKey struct {
	set        types.UID
	generation int64
	revisionRV string
}

// restoresTo reports whether latest, restored onto set and defaulted as the
// apiserver would, records the same template as proposed. Revisions written by
// Kubernetes before 1.34 differ from today's bytes (they carried
// "creationTimestamp":null) without differing in meaning; treating them as
// the update revision keeps an upgrade from rolling every pod.
func restoresTo(set *appsv1.StatefulSet, proposed, latest *appsv1.ControllerRevision, memo *lru.Cache) bool {
	key := memoKey{set: set.UID, generation: set.Generation, revisionRV: latest.ResourceVersion}
	if _, ok := memo.Get(key); ok {
		return true
	}
	restored, err := restoreRevision(set, latest)
	if err != nil {
		return false
	}
	appsdefaults.SetObjectDefaults_StatefulSet(restored)
	rebuilt, err := buildRevision(restored, -1, nil)
	if err != nil || !bytes.Equal(rebuilt.Data.Raw, proposed.Data.Raw) {
		return false
	}
	memo.Add(key, true)
	return true
}

// revisionChoice is what the revision step of a sync must do before pods can
// be planned.
type revisionChoice struct {
	// update is the set's update revision when it already exists unchanged.
	update *appsv1.ControllerRevision
	// create is a revision to create when no existing one records the
	// template (create == nil when update or renumber is set).
	create *appsv1.ControllerRevision
	// renumber is an existing revision that records the template but is not
	// the newest: a rollback, which gives it the next revision number.
	renumber       *appsv1.ControllerRevision
	renumberTo     int64
	collisionCount int32
}

// chooseRevisions decides the update revision of set among its revisions,
// which must be sorted: the newest revision if it records set's template, an
// older one moved to the front if one does (a rollback, as after `kubectl
// rollout undo`), or a new one.
func chooseRevisions(set *appsv1.StatefulSet, revisions []*appsv1.ControllerRevision, semantic bool, memo *lru.Cache) (revisionChoice, error) {
	choice := revisionChoice{collisionCount: ptr.Deref(set.Status.CollisionCount, 0)}
	next := int64(1)
	if n := len(revisions); n > 0 {
		next = revisions[n-1].Revision + 1
	}
	proposed, err := buildRevision(set, next, &choice.collisionCount)
	if err != nil {
		return choice, err
	}
	var lastEqual *appsv1.ControllerRevision
	for _, rev := range revisions {
		if history.EqualRevision(rev, proposed) {
			lastEqual = rev
		}
	}
	switch {
	case lastEqual != nil && history.EqualRevision(revisions[len(revisions)-1], lastEqual):
		choice.update = revisions[len(revisions)-1]
	case lastEqual != nil:
		choice.renumber, choice.renumberTo = lastEqual, next
	case len(revisions) > 0 && semantic && restoresTo(set, proposed, revisions[len(revisions)-1], memo):
		choice.update = revisions[len(revisions)-1]
	default:
		choice.create = proposed
	}
	return choice, nil
}

// revisionsToPrune returns the revisions beyond set's revisionHistoryLimit,
// oldest first; revisions must be sorted. A revision is live, and never
// pruned, while it is one of live (the current and update revisions, either
// may be nil) or any pod is labelled with it.
func revisionsToPrune(set *appsv1.StatefulSet, pods []*v1.Pod, revisions []*appsv1.ControllerRevision, live ...*appsv1.ControllerRevision) []*appsv1.ControllerRevision {
	limit := int(ptr.Deref(set.Spec.RevisionHistoryLimit, 10))
	if limit < 0 {
		return nil
	}
	inUse := map[string]bool{}
	for _, rev := range live {
		if rev != nil {
			inUse[rev.Name] = true
		}
	}
	for _, pod := range pods {
		inUse[revisionOf(pod)] = true
	}
	old := slices.DeleteFunc(slices.Clone(revisions), func(rev *appsv1.ControllerRevision) bool { return inUse[rev.Name] })
	if len(old) <= limit {
		return nil
	}
	return old[:len(old)-limit]
}

package daemonset

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/kubernetes/pkg/controller"

	"quartet.dev/quartet/internal/controllers/kit"
)

// defaultRevisionHistoryLimit applies when a set has no
// revisionHistoryLimit, which the apiserver's defaulting never allows.
const defaultRevisionHistoryLimit = 10

// templateHash names a revision: upstream's hash of the pod template,
// salted with the collision count, so revisions and pods keep their names
// when a cluster switches between the two controllers.
var templateHash = controller.ComputeHash

// revisionPlan is what sync must write for the set to have exactly one
// ControllerRevision of its current template, numbered highest.
type revisionPlan struct {
	// labelled are revisions that lacked the controller-revision-hash label,
	// with it added (the revision's name is its value).
	labelled []*appsv1.ControllerRevision
	// current is the existing revision of the current template; nil when
	// create must be written.
	current *appsv1.ControllerRevision
	create  *appsv1.ControllerRevision
	// renumber is current with its revision raised above every old one.
	renumber *appsv1.ControllerRevision
	// duplicates also hold the current template and are deleted after the
	// pods labelled with their hashes are relabelled to current's.
	duplicates []*appsv1.ControllerRevision
	// old are the revisions of other templates.
	old []*appsv1.ControllerRevision
}

// planRevisions compares the set's claimed revisions with its template.
func planRevisions(set *appsv1.DaemonSet, revisions []*appsv1.ControllerRevision) (*revisionPlan, error) {
	data, err := kit.TemplatePatch(&set.Spec.Template, json.Unmarshal)
	if err != nil {
		return nil, fmt.Errorf("encoding the template of DaemonSet %s/%s: %w", set.Namespace, set.Name, err)
	}
	p := &revisionPlan{}
	var matching []*appsv1.ControllerRevision
	for _, r := range revisions {
		if _, ok := r.Labels[appsv1.ControllerRevisionHashLabelKey]; !ok {
			r = r.DeepCopy()
			if r.Labels == nil {
				r.Labels = map[string]string{}
			}
			r.Labels[appsv1.ControllerRevisionHashLabelKey] = r.Name
			p.labelled = append(p.labelled, r)
		}
		if bytes.Equal(r.Data.Raw, data) {
			matching = append(matching, r)
		} else {
			p.old = append(p.old, r)
		}
	}
	next := int64(1)
	for _, r := range p.old {
		next = max(next, r.Revision+1)
	}
	if len(matching) == 0 {
		hash := templateHash(&set.Spec.Template, set.Status.CollisionCount)
		labels := make(map[string]string, len(set.Spec.Template.Labels)+1)
		maps.Copy(labels, set.Spec.Template.Labels)
		labels[appsv1.ControllerRevisionHashLabelKey] = hash
		p.create = &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name:            set.Name + "-" + hash,
				Namespace:       set.Namespace,
				Labels:          labels,
				Annotations:     maps.Clone(set.Annotations),
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)},
			},
			Data:     runtime.RawExtension{Raw: data},
			Revision: next,
		}
		return p, nil
	}
	// Keep the highest-numbered copy of the current template (the name breaks
	// ties so that every sync keeps the same one).
	slices.SortFunc(matching, func(a, b *appsv1.ControllerRevision) int {
		return cmp.Or(cmp.Compare(b.Revision, a.Revision), strings.Compare(a.Name, b.Name))
	})
	p.current, p.duplicates = matching[0], matching[1:]
	if p.current.Revision < next {
		p.renumber = p.current.DeepCopy()
		p.renumber.Revision = next
	}
	return p, nil
}

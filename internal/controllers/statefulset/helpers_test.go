package statefulset

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// now is the fixed "now" of plan tests.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture is a set at two revisions: r1 (nginx:1.27) and r2 (nginx:1.28).
type fixture struct {
	set    *appsv1.StatefulSet // at r1's template
	v2     *appsv1.StatefulSet // at r2's template
	r1, r2 *appsv1.ControllerRevision
}

func newFixture(t *testing.T, replicas int32, opts ...func(*appsv1.StatefulSet)) *fixture {
	t.Helper()
	set := testSet("web", replicas)
	for _, o := range opts {
		o(set)
	}
	v2 := set.DeepCopy()
	v2.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	return &fixture{set: set, v2: v2, r1: mustRevision(t, set, 1), r2: mustRevision(t, v2, 2)}
}

func withClaims(set *appsv1.StatefulSet) {
	set.Spec.VolumeClaimTemplates = []v1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	set.Spec.Template.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/usr/share/nginx/html"}}
}

func parallel(set *appsv1.StatefulSet) {
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
}

func onDelete(set *appsv1.StatefulSet) {
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
}

func partition(n int32) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) { set.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(n) }
}

func maxUnavailable(v string) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) {
		mu := intstr.Parse(v)
		set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &mu
	}
}

func retention(whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) {
		set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: whenDeleted, WhenScaled: whenScaled,
		}
	}
}

func minReadySeconds(n int32) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) { set.Spec.MinReadySeconds = n }
}

func annotate(k, v string) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) {
		if set.Annotations == nil {
			set.Annotations = map[string]string{}
		}
		set.Annotations[k] = v
	}
}

// podState changes a pod the way the apiserver and kubelet would.
type podState func(*v1.Pod)

func running(p *v1.Pod) { p.Status.Phase = v1.PodRunning }
func failed(p *v1.Pod)  { p.Status.Phase = v1.PodFailed }
func succeeded(p *v1.Pod) {
	p.Status.Phase = v1.PodSucceeded
}
func terminating(p *v1.Pod) {
	p.DeletionTimestamp = &metav1.Time{Time: now.Add(-time.Second)}
}

// createdAgo sets the pod's creation time d before now.
func createdAgo(d time.Duration) podState {
	return func(p *v1.Pod) { p.CreationTimestamp = metav1.Time{Time: now.Add(-d)} }
}

// readyFor makes the pod Running and Ready since d before now.
func readyFor(d time.Duration) podState {
	return func(p *v1.Pod) {
		p.Status.Phase = v1.PodRunning
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Time{Time: now.Add(-d)}}}
	}
}

// ready is Running and Ready for an hour.
var ready = readyFor(time.Hour)

// unreadyFor makes the pod Running but not Ready since d before now.
func unreadyFor(d time.Duration) podState {
	return func(p *v1.Pod) {
		p.Status.Phase = v1.PodRunning
		p.CreationTimestamp = metav1.Time{Time: now.Add(-d - time.Minute)}
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: metav1.Time{Time: now.Add(-d)}}}
	}
}

// pod is the set's pod of ordinal ord created from rev, as read back from
// the apiserver; with no states it is Pending.
func (f *fixture) pod(ord int, rev *appsv1.ControllerRevision, states ...podState) *v1.Pod {
	src := f.set
	if rev == f.r2 {
		src = f.v2
	}
	p := newPod(src, ord, rev.Name)
	p.UID = types.UID(fmt.Sprintf("uid-%s", p.Name))
	p.ResourceVersion = "1"
	p.Status.Phase = v1.PodPending
	for _, s := range states {
		s(p)
	}
	return p
}

// claim is the claim of ordinal ord as the set's template makes it, with
// owner references refs.
func (f *fixture) claim(ord int, refs ...metav1.OwnerReference) *v1.PersistentVolumeClaim {
	c := claimsFor(f.set, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podNameFor(f.set, ord)}})[0]
	c.UID = types.UID("uid-" + c.Name)
	c.ResourceVersion = "1"
	c.OwnerReferences = refs
	return c
}

func (f *fixture) setRef() metav1.OwnerReference {
	return *metav1.NewControllerRef(f.set, setKind)
}

func podRef(p *v1.Pod) metav1.OwnerReference {
	return *metav1.NewControllerRef(p, podKind)
}

func claimMap(claims ...*v1.PersistentVolumeClaim) map[string]*v1.PersistentVolumeClaim {
	m := map[string]*v1.PersistentVolumeClaim{}
	for _, c := range claims {
		m[c.Name] = c
	}
	return m
}

// describe renders a plan's tasks one per line, "stage: Kind pod details",
// with a * after the stage name of a batched stage.
func describe(p *decision) []string {
	var lines []string
	for _, s := range p.stages {
		name := s.name
		if s.batched {
			name += "*"
		}
		for _, unit := range s.units {
			for _, t := range unit {
				line := fmt.Sprintf("%s: %s %s", name, t.kind, t.pod.Name)
				if t.kind == taskCreate {
					line += "@" + revisionOf(t.pod)
				}
				for _, c := range t.newClaims {
					line += " +" + c.Name
				}
				for _, c := range t.deletingClaims {
					line += " deleting:" + c
				}
				for _, o := range t.owners {
					line += " " + describeOwners(o)
				}
				if t.writePod {
					line += " write"
				}
				if t.rollout {
					line += " rollout"
				}
				if t.note != nil {
					line += " note:" + t.note.Reason
				}
				lines = append(lines, line)
			}
		}
	}
	return lines
}

func describeOwners(o ownerChange) string {
	s := o.claim
	if o.foreign {
		s += "!"
	}
	if o.update == nil {
		return s
	}
	var kinds []string
	for _, ref := range o.update.OwnerReferences {
		kinds = append(kinds, ref.Kind+"/"+ref.Name)
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	return s + "→" + strings.Join(kinds, ",")
}

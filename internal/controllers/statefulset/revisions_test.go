package statefulset

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsdefaults "k8s.io/kubernetes/pkg/apis/apps/v1"
	"k8s.io/kubernetes/pkg/controller/history"
	"k8s.io/utils/lru"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// testdata/upstream holds the revision-compatibility data of upstream's
// statefulset package (k8s.io/kubernetes v1.37.2,
// pkg/controller/statefulset/testdata): a set and the revision written for it
// by Kubernetes 1.33 and by 1.34.
func loadUpstream(t *testing.T, name string, into interface{}) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "upstream", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
	if set, ok := into.(*appsv1.StatefulSet); ok {
		appsdefaults.SetObjectDefaults_StatefulSet(set)
	}
}

func TestTemplatePatchMatchesUpstreamRevision(t *testing.T) {
	set := &appsv1.StatefulSet{}
	rev := &appsv1.ControllerRevision{}
	loadUpstream(t, "compatibility_set_1.34.0.json", set)
	loadUpstream(t, "compatibility_revision_1.34.0.json", rev)

	data, err := kit.TemplatePatch(&set.Spec.Template, json.Unmarshal)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(rev.Data.Raw) {
		t.Fatalf("revision data differs from upstream's:\n got %s\nwant %s", data, rev.Data.Raw)
	}
	built, err := buildRevision(set, 2, set.Status.CollisionCount)
	if err != nil {
		t.Fatal(err)
	}
	if built.Name != rev.Name || built.Labels[history.ControllerRevisionHashLabel] != rev.Labels[history.ControllerRevisionHashLabel] {
		t.Fatalf("revision %s (hash %s), upstream wrote %s (hash %s)", built.Name,
			built.Labels[history.ControllerRevisionHashLabel], rev.Name, rev.Labels[history.ControllerRevisionHashLabel])
	}
	if diff := cmp.Diff(rev.OwnerReferences, built.OwnerReferences); diff != "" {
		t.Errorf("owner references (-upstream +quartet):\n%s", diff)
	}
	// The same set, which the current revision of the set also names.
	if set.Status.UpdateRevision != built.Name {
		t.Errorf("set's updateRevision %s, built %s", set.Status.UpdateRevision, built.Name)
	}
}

func TestChooseRevisionsKeepsUpstreamRevisions(t *testing.T) {
	set133, set134 := &appsv1.StatefulSet{}, &appsv1.StatefulSet{}
	rev133, rev134 := &appsv1.ControllerRevision{}, &appsv1.ControllerRevision{}
	loadUpstream(t, "compatibility_set_1.33.0.json", set133)
	loadUpstream(t, "compatibility_set_1.34.0.json", set134)
	loadUpstream(t, "compatibility_revision_1.33.0.json", rev133)
	loadUpstream(t, "compatibility_revision_1.34.0.json", rev134)

	tests := map[string]struct {
		set       *appsv1.StatefulSet
		revisions []*appsv1.ControllerRevision
		semantic  bool
		want      *appsv1.ControllerRevision
		create    bool
	}{
		"1.34 set, 1.34 revision":                         {set: set134, revisions: []*appsv1.ControllerRevision{rev134}, semantic: true, want: rev134},
		"1.34 set, 1.34 revision, no semantic comparison": {set: set134, revisions: []*appsv1.ControllerRevision{rev134}, want: rev134},
		// Written by 1.33 with "creationTimestamp":null: not byte-equal,
		// but restores to the same template, so no rollout.
		"1.33 set, 1.33 revision":          {set: set133, revisions: []*appsv1.ControllerRevision{rev133}, semantic: true, want: rev133},
		"1.34 set, 1.33 and 1.34 revision": {set: set134, revisions: []*appsv1.ControllerRevision{rev133, rev134}, semantic: true, want: rev134},
		// Without the semantic comparison an old revision means a new one.
		"1.33 set, 1.33 revision, no semantic comparison": {set: set133, revisions: []*appsv1.ControllerRevision{rev133}, create: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			memo := lru.New(8)
			for round := 0; round < 2; round++ { // the second round answers from the memo
				choice, err := chooseRevisions(tc.set.DeepCopy(), tc.revisions, tc.semantic, memo)
				if err != nil {
					t.Fatal(err)
				}
				if tc.create {
					if choice.create == nil || choice.update != nil {
						t.Fatalf("want a new revision, got %+v", choice)
					}
					return
				}
				if choice.update != tc.want {
					t.Fatalf("round %d: update revision %v, want %s", round, choice.update, tc.want.Name)
				}
			}
		})
	}
}

func testSet(name string, replicas int32) *appsv1.StatefulSet {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
			},
		},
	}
	appsdefaults.SetObjectDefaults_StatefulSet(set)
	return set
}

func mustRevision(t *testing.T, set *appsv1.StatefulSet, number int64) *appsv1.ControllerRevision {
	t.Helper()
	rev, err := buildRevision(set, number, ptr.To[int32](0))
	if err != nil {
		t.Fatal(err)
	}
	rev.UID = types.UID("uid-rev-" + rev.Name)
	return rev
}

func TestChooseRevisions(t *testing.T) {
	v1set := testSet("web", 3)
	v2set := v1set.DeepCopy()
	v2set.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	r1 := mustRevision(t, v1set, 1)
	r2 := mustRevision(t, v2set, 2)

	tests := map[string]struct {
		set          *appsv1.StatefulSet
		revisions    []*appsv1.ControllerRevision
		wantUpdate   *appsv1.ControllerRevision
		wantRenumber *appsv1.ControllerRevision
		renumberTo   int64
		wantCreate   string
		wantNumber   int64
	}{
		"first revision":                        {set: v1set, wantCreate: r1.Name, wantNumber: 1},
		"unchanged":                             {set: v1set, revisions: []*appsv1.ControllerRevision{r1}, wantUpdate: r1},
		"new template":                          {set: v2set, revisions: []*appsv1.ControllerRevision{r1}, wantCreate: r2.Name, wantNumber: 2},
		"rollback renumbers the older revision": {set: v1set, revisions: []*appsv1.ControllerRevision{r1, r2}, wantRenumber: r1, renumberTo: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			choice, err := chooseRevisions(tc.set, tc.revisions, true, lru.New(8))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantUpdate != nil:
				if choice.update != tc.wantUpdate {
					t.Errorf("update %v, want %s", choice.update, tc.wantUpdate.Name)
				}
			case tc.wantRenumber != nil:
				if choice.renumber != tc.wantRenumber || choice.renumberTo != tc.renumberTo {
					t.Errorf("renumber %v to %d, want %s to %d", choice.renumber, choice.renumberTo, tc.wantRenumber.Name, tc.renumberTo)
				}
			default:
				if choice.create == nil || choice.create.Name != tc.wantCreate || choice.create.Revision != tc.wantNumber {
					t.Errorf("create %v, want %s number %d", choice.create, tc.wantCreate, tc.wantNumber)
				}
			}
		})
	}
}

func TestBuildRevisionCarriesAnnotationsAndLabels(t *testing.T) {
	set := testSet("web", 1)
	set.Annotations = map[string]string{"kubernetes.io/change-cause": "image bump"}
	rev := mustRevision(t, set, 4)
	if rev.Annotations["kubernetes.io/change-cause"] != "image bump" {
		t.Errorf("annotations %v", rev.Annotations)
	}
	if rev.Labels["app"] != "web" || rev.Labels[history.ControllerRevisionHashLabel] == "" {
		t.Errorf("labels %v", rev.Labels)
	}
	if rev.Revision != 4 || rev.Namespace != "default" {
		t.Errorf("revision %d namespace %q", rev.Revision, rev.Namespace)
	}
}

func TestRestoreRevision(t *testing.T) {
	v1set := testSet("web", 3)
	v2set := v1set.DeepCopy()
	v2set.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	v2set.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
	r1 := mustRevision(t, v1set, 1)

	// v2set with r1's template: replicas and everything outside the
	// template stay v2set's.
	v2set.Spec.Replicas = ptr.To[int32](7)
	restored, err := restoreRevision(v2set, r1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v1set.Spec.Template, restored.Spec.Template); diff != "" {
		t.Errorf("template (-want +got):\n%s", diff)
	}
	if *restored.Spec.Replicas != 7 {
		t.Errorf("replicas %d", *restored.Spec.Replicas)
	}
	bad := r1.DeepCopy()
	bad.Data = runtime.RawExtension{Raw: []byte("{not json")}
	if _, err := restoreRevision(v2set, bad); err == nil {
		t.Error("a corrupt revision restored without error")
	}
}

func TestRevisionsToPrune(t *testing.T) {
	set := testSet("web", 1)
	var revs []*appsv1.ControllerRevision
	for i := int64(1); i <= 6; i++ {
		s := set.DeepCopy()
		s.Spec.Template.Labels["v"] = string(rune('a' + i))
		revs = append(revs, mustRevision(t, s, i))
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{appsv1.StatefulSetRevisionLabel: revs[0].Name}}}
	names := func(rs []*appsv1.ControllerRevision) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	tests := map[string]struct {
		limit int32
		want  []string
	}{
		// Live: revs[0] (a pod), revs[4] (current), revs[5] (update).
		"limit 1 keeps the newest old one": {limit: 1, want: names(revs[1:3])},
		"limit 0 keeps only live ones":     {limit: 0, want: names(revs[1:4])},
		"limit 3 keeps all":                {limit: 3},
		"negative limit keeps all":         {limit: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := set.DeepCopy()
			s.Spec.RevisionHistoryLimit = ptr.To(tc.limit)
			got := names(revisionsToPrune(s, []*v1.Pod{pod}, revs, revs[4], revs[5]))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pruned (-want +got):\n%s", diff)
			}
		})
	}
}

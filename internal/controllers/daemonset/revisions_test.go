package daemonset

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

// TestRevisionIdentityMatchesKubernetes checks templateHash and kit.TemplatePatch
// against testdata/revisions.golden.json, which was produced from the sets in
// testdata/sets.json by Kubernetes v1.37.2's own functions
// (controller.ComputeHash, and daemon.Match accepting the data). Equal bytes
// mean a revision written by either controller is recognised by the other and
// by `kubectl rollout undo`.
func TestRevisionIdentityMatchesKubernetes(t *testing.T) {
	var inputs []struct {
		Name           string          `json:"name"`
		CollisionCount *int32          `json:"collisionCount"`
		Set            json.RawMessage `json:"set"`
	}
	var golden []struct {
		Name, Hash, Data string
	}
	readJSON(t, "testdata/sets.json", &inputs)
	readJSON(t, "testdata/revisions.golden.json", &golden)
	if len(inputs) != len(golden) || len(inputs) == 0 {
		t.Fatalf("%d inputs, %d golden entries", len(inputs), len(golden))
	}
	for i, in := range inputs {
		t.Run(in.Name, func(t *testing.T) {
			var set appsv1.DaemonSet
			if err := json.Unmarshal(in.Set, &set); err != nil {
				t.Fatal(err)
			}
			if got := templateHash(&set.Spec.Template, in.CollisionCount); got != golden[i].Hash {
				t.Errorf("templateHash = %q, Kubernetes computes %q", got, golden[i].Hash)
			}
			data, err := kit.TemplatePatch(&set.Spec.Template, utiljson.Unmarshal)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(golden[i].Data, string(data)); diff != "" {
				t.Errorf("revisionData (-kubernetes +quartet):\n%s", diff)
			}
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestTemplateHashChangesWithTemplateAndCollisions(t *testing.T) {
	a := testSet()
	b := testSet(func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	one := int32(1)
	if templateHash(&a.Spec.Template, nil) == templateHash(&b.Spec.Template, nil) {
		t.Error("different templates, same hash")
	}
	if templateHash(&a.Spec.Template, nil) == templateHash(&a.Spec.Template, &one) {
		t.Error("collisionCount does not change the hash")
	}
}

func revision(name, hash string, number int64, set *appsv1.DaemonSet) *appsv1.ControllerRevision {
	data, err := kit.TemplatePatch(&set.Spec.Template, utiljson.Unmarshal)
	if err != nil {
		panic(err)
	}
	labels := map[string]string{"app": "agent"}
	if hash != "" {
		labels[appsv1.ControllerRevisionHashLabelKey] = hash
	}
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Data:       runtime.RawExtension{Raw: data},
		Revision:   number,
	}
}

func TestPlanRevisions(t *testing.T) {
	cur := testSet()
	older := testSet(func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.Containers[0].Image = "busybox:old" })
	curHash := templateHash(&cur.Spec.Template, nil)

	type result struct {
		Hash       string
		Create     string
		CreateRev  int64
		Current    string
		Renumber   int64
		Labelled   []string
		Duplicates []string
		Old        []string
	}
	names := func(rs []*appsv1.ControllerRevision) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	cases := map[string]struct {
		revisions []*appsv1.ControllerRevision
		want      result
	}{
		"first revision": {
			want: result{Hash: curHash, Create: "agent-" + curHash, CreateRev: 1},
		},
		"current exists": {
			revisions: []*appsv1.ControllerRevision{revision("agent-"+curHash, curHash, 1, cur)},
			want:      result{Hash: curHash, Current: "agent-" + curHash},
		},
		"template changed: next number": {
			revisions: []*appsv1.ControllerRevision{revision("agent-old", "old", 3, older)},
			want:      result{Hash: curHash, Create: "agent-" + curHash, CreateRev: 4, Old: []string{"agent-old"}},
		},
		"rollback to an older revision renumbers it": {
			revisions: []*appsv1.ControllerRevision{revision("agent-cur", "cur", 1, cur), revision("agent-old", "old", 2, older)},
			want:      result{Hash: "cur", Current: "agent-cur", Renumber: 3, Old: []string{"agent-old"}},
		},
		"duplicates keep the highest number": {
			revisions: []*appsv1.ControllerRevision{revision("agent-a", "a", 2, cur), revision("agent-b", "b", 5, cur), revision("agent-old", "old", 1, older)},
			want:      result{Hash: "b", Current: "agent-b", Duplicates: []string{"agent-a"}, Old: []string{"agent-old"}},
		},
		"a revision without the hash label gets its name": {
			revisions: []*appsv1.ControllerRevision{revision("agent-x", "", 1, cur)},
			want:      result{Hash: "agent-x", Current: "agent-x", Labelled: []string{"agent-x"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := planRevisions(cur, tc.revisions)
			if err != nil {
				t.Fatal(err)
			}
			made := p.current // the revision the plan makes current
			if made == nil {
				made = p.create
			}
			got := result{Hash: made.Labels[appsv1.ControllerRevisionHashLabelKey], Labelled: names(p.labelled), Duplicates: names(p.duplicates), Old: names(p.old)}
			if p.create != nil {
				got.Create, got.CreateRev = p.create.Name, p.create.Revision
				if p.create.Labels[appsv1.ControllerRevisionHashLabelKey] != curHash || p.create.Labels["app"] != "agent" {
					t.Errorf("created revision labels = %v", p.create.Labels)
				}
				if ref := metav1.GetControllerOf(p.create); ref == nil || ref.UID != cur.UID {
					t.Errorf("created revision controller = %v", ref)
				}
				if diff := cmp.Diff(cur.Annotations, p.create.Annotations); diff != "" {
					t.Errorf("revision annotations are the set's (kubectl rollout history reads change-cause there):\n%s", diff)
				}
			}
			if p.current != nil {
				got.Current = p.current.Name
			}
			if p.renumber != nil {
				got.Renumber = p.renumber.Revision
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCleanupRevisions checks which old revisions a sync deletes, in order.
func TestCleanupRevisions(t *testing.T) {
	set := testSet()
	old := []*appsv1.ControllerRevision{
		revision("r4", "h4", 4, set), revision("r1", "h1", 1, set), revision("r3", "h3", 3, set), revision("r2", "h2", 2, set), revision("r5", "h5", 5, set),
	}
	cases := map[string]struct {
		limit *int32
		live  []string
		want  []string
	}{
		"oldest go first":          {limit: new(int32(2)), want: []string{"delete r1", "delete r2", "delete r3"}},
		"live revisions are kept":  {limit: new(int32(2)), live: []string{"h1", "h3"}, want: []string{"delete r2", "delete r4", "delete r5"}},
		"within the limit":         {limit: new(int32(5))},
		"zero keeps only the live": {limit: new(int32(0)), live: []string{"h5"}, want: []string{"delete r1", "delete r2", "delete r3", "delete r4"}},
		"unset means 10":           {},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			set.Spec.RevisionHistoryLimit = tc.limit
			var objs []runtime.Object
			for _, r := range old {
				objs = append(objs, r)
			}
			var pods []*corev1.Pod
			for _, h := range tc.live {
				pods = append(pods, testPod("p-"+h, "node-1", h))
			}
			client := kittest.NewAPI(objs...)
			if err := (&applier{client: client}).cleanupRevisions(context.Background(), set, old, pods); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, kittest.Calls(client, "controllerrevisions")); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
		})
	}
}

package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDirectoriesFilesAndStdin(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "b/web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n---\n# Source: chart/templates/none.yaml\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\n")
	write(t, dir, "a.json", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"one"}},{"apiVersion":"v1","kind":"Secret","metadata":{"name":"two"}}]}`)
	write(t, dir, "notes.txt", "not a manifest")
	write(t, dir, ".hidden.yaml", "kind: [")
	write(t, dir, ".git/config.yaml", "kind: [")
	write(t, dir, "c.YML", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\n")
	single := write(t, t.TempDir(), "single.txt", "apiVersion: v1\nkind: Namespace\nmetadata: {name: ops}\n")

	objs, errs := Load([]string{dir, single, Stdin}, strings.NewReader("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	var got []string
	for _, o := range objs {
		rel := filepath.Base(o.Where())
		if r, err := filepath.Rel(dir, o.Where()); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
		got = append(got, rel+" "+o.APIVersion+" "+o.Kind+" "+o.Namespace+"/"+o.Name)
	}
	want := []string{
		"a.json#1 items[0] v1 ConfigMap /one",
		"a.json#1 items[1] v1 Secret /two",
		"b/web.yaml v1 Service shop/web",
		"b/web.yaml#3 apps/v1 StatefulSet /web",
		"c.YML batch/v1 Job /once",
		"single.txt v1 Namespace /ops",
		"<stdin> v1 Pod /p",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}

func TestReadErrors(t *testing.T) {
	cases := map[string]struct {
		content  string
		wantObjs int
		wantErrs []string
	}{
		"bad YAML, then a good document": {content: "kind: [\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", wantObjs: 1, wantErrs: []string{"m.yaml: not YAML or JSON"}},
		"a scalar":                       {content: "hello\n", wantErrs: []string{"m.yaml: not an object"}},
		"no kind":                        {content: "apiVersion: v1\nmetadata: {name: x}\n", wantErrs: []string{"m.yaml: an object without a kind"}},
		"no apiVersion":                  {content: "kind: Pod\nmetadata: {name: x}\n", wantErrs: []string{"m.yaml: a Pod without an apiVersion"}},
		"a bad List item":                {content: "apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, apiVersion: v1}\n- {metadata: {name: x}}\n", wantObjs: 1, wantErrs: []string{"m.yaml#1 items[1]: an object without a kind"}},
		"an empty mapping":               {content: "{}\n---\n", wantObjs: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs, errs := Read(strings.NewReader(tc.content), "m.yaml")
			if len(objs) != tc.wantObjs {
				t.Errorf("%d objects, want %d", len(objs), tc.wantObjs)
			}
			var got []string
			for _, err := range errs {
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("error %v is not a *manifest.Error", err)
				}
				got = append(got, err.Error())
			}
			if len(got) != len(tc.wantErrs) {
				t.Fatalf("errors %q, want %q", got, tc.wantErrs)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.wantErrs[i]) {
					t.Errorf("error %q, want one starting %q", got[i], tc.wantErrs[i])
				}
			}
		})
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, errs := Load([]string{filepath.Join(t.TempDir(), "absent")}, nil)
	if len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("errors %v, want one not-exist error", errs)
	}
}

func TestDecodeIsStrict(t *testing.T) {
	objs, _ := Read(strings.NewReader("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  replica: 3\n  replicas: 2\n"), "m.yaml")
	var set appsv1.StatefulSet
	err := objs[0].Decode(&set)
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.replica"`) {
		t.Errorf("Decode error = %v, want the unknown field named", err)
	}
	if *set.Spec.Replicas != 2 {
		t.Errorf("the known fields were not decoded: %+v", set.Spec)
	}
}

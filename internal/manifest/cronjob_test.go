package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
)

func TestLoad(t *testing.T) {
	const cronJobDoc = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: %s
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: i}]
`
	doc := func(name string) string { return strings.ReplaceAll(cronJobDoc, "%s", name) }
	cases := map[string]struct {
		content   string
		wantNames []string // LoadCronJobs
		wantOne   string   // LoadCronJob; "" means it must fail
		wantErr   string   // substring of LoadCronJob's error
	}{
		"one CronJob":                    {content: doc("a"), wantNames: []string{"a"}, wantOne: "a"},
		"JSON":                           {content: `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"j"},"spec":{"schedule":"@daily"}}`, wantNames: []string{"j"}, wantOne: "j"},
		"among other kinds":              {content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + doc("b"), wantNames: []string{"b"}, wantOne: "b"},
		"leading separator and comments": {content: "---\n# only a comment\n---\n" + doc("c") + "---\n", wantNames: []string{"c"}, wantOne: "c"},
		"in a List":                      {content: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: batch/v1\n  kind: CronJob\n  metadata: {name: d}\n  spec: {schedule: '@hourly'}\n", wantNames: []string{"d"}, wantOne: "d"},
		"two CronJobs":                   {content: doc("a") + "---\n" + doc("b"), wantNames: []string{"a", "b"}, wantErr: "holds 2 CronJobs (a, b): name the one you mean"},
		"no CronJob":                     {content: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n", wantErr: "no CronJob found (it holds Deployment, Service)"},
		"empty file":                     {content: "", wantErr: "no CronJob found: the file holds no objects"},
		"only comments":                  {content: "# nothing here\n", wantErr: "no CronJob found: the file holds no objects"},
		"not YAML":                       {content: "apiVersion: batch/v1\nkind: CronJob\n  bad: [indent\n", wantErr: "manifest.yaml: not YAML or JSON"},
		"no kind":                        {content: "apiVersion: batch/v1\nmetadata: {name: x}\n", wantErr: "manifest.yaml: an object without a kind"},
		"old apiVersion":                 {content: strings.Replace(doc("e"), "batch/v1", "batch/v1beta1", 1), wantErr: `CronJob with apiVersion "batch/v1beta1"`},
		"misspelt field":                 {content: strings.Replace(doc("f"), "schedule:", "schedul:", 1), wantErr: `unknown field "spec.schedul"`},
		"wrong type":                     {content: strings.Replace(doc("g"), "name: g", "name: [g]", 1), wantErr: "manifest.yaml: reading apiVersion, kind and metadata"},
		"wrong type in the spec":         {content: strings.Replace(doc("h"), `schedule: "0 3 * * *"`, "schedule: [0]", 1), wantErr: "manifest.yaml: CronJob: json: cannot unmarshal array"},
		"error in the second document":   {content: doc("a") + "---\nkind: [\n", wantErr: "manifest.yaml#2: not YAML or JSON"},
		"error in a List item":           {content: "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n", wantErr: "items[0]: an object without a kind"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "manifest.yaml")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.wantNames != nil {
				cjs, err := LoadCronJobs(path, nil)
				if err != nil {
					t.Fatalf("LoadCronJobs: %v", err)
				}
				var got []string
				for _, cj := range cjs {
					got = append(got, cj.Name)
				}
				if diff := cmp.Diff(tc.wantNames, got); diff != "" {
					t.Errorf("CronJobs (-want +got):\n%s", diff)
				}
			}
			cj, err := loadOne(path)
			if tc.wantOne != "" {
				if err != nil {
					t.Fatalf("loadOne: %v", err)
				}
				if cj.Name != tc.wantOne {
					t.Errorf("loadOne = %q, want %q", cj.Name, tc.wantOne)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("loadOne error = %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := loadOne(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadCronJob of a missing file: %v", err)
	}
}

// loadOne is what `quartet cron next -f FILE` does without a name.
func loadOne(path string) (*batchv1.CronJob, error) {
	cjs, err := LoadCronJobs(path, nil)
	if err != nil {
		return nil, err
	}
	return PickCronJob(cjs, "", path)
}

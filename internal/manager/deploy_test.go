package manager

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The permissions in deploy/ are those the start-up check asks for: one
// list, in this package.

const deployDir = "../../deploy"

// TestDeployRules checks deploy/'s roles against the same rules.
func TestDeployRules(t *testing.T) {
	roles := map[string][]rbacv1.PolicyRule{}
	for _, file := range []string{"quartet-controllers.yaml", "takeover.yaml"} {
		b, err := os.ReadFile(filepath.Join(deployDir, file))
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufioReader(b))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var obj struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Rules []rbacv1.PolicyRule `json:"rules"`
			}
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if obj.Kind == "ClusterRole" || obj.Kind == "Role" {
				roles[obj.Kind+" "+obj.Metadata.Name] = obj.Rules
			}
		}
	}
	for _, n := range Names() {
		if diff := cmp.Diff(ControllerRules(n), roles["ClusterRole quartet:controller:"+n]); diff != "" {
			t.Errorf("deploy/'s ClusterRole quartet:controller:%s (-want +got):\n%s", n, diff)
		}
	}
	if diff := cmp.Diff(append(ElectionRules(), ProbeRules()...), roles["Role quartet-controllers"]); diff != "" {
		t.Errorf("deploy/'s Role quartet-controllers (-want +got):\n%s", diff)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// chartFiles are the Helm chart's copies of the same rules (deploy/chart/files),
// which its templates turn into roles.
func chartFiles() map[string]any {
	rules := map[string][]rbacv1.PolicyRule{}
	for _, n := range Names() {
		rules[n] = ControllerRules(n)
	}
	return map[string]any{
		"files/rules.yaml":           rules,
		"files/namespace-rules.yaml": map[string][]rbacv1.PolicyRule{"election": ElectionRules(), "probe": ProbeRules()},
	}
}

// TestChartRulesFiles checks the chart's rule files against the same rules;
// UPDATE_DEPLOY=1 rewrites them. (test/e2e TestChart renders the chart and
// checks its roles against deploy/'s.)
func TestChartRulesFiles(t *testing.T) {
	for name, content := range chartFiles() {
		want, err := yaml.Marshal(content)
		if err != nil {
			t.Fatal(err)
		}
		want = append([]byte("# Generated from internal/manager/access.go: UPDATE_DEPLOY=1 go test ./internal/manager -run TestChartRulesFiles\n"), want...)
		path := filepath.Join(deployDir, "chart", name)
		if os.Getenv("UPDATE_DEPLOY") != "" {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s differs from internal/manager's rules (UPDATE_DEPLOY=1 rewrites it) (-want +got):\n%s", path, diff)
		}
	}
}

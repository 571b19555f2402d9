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

package plugins

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain makes the test binary a multi-call like the quartet binary: run
// under a plugin's name it is that plugin.
func TestMain(m *testing.M) {
	if Lookup(filepath.Base(os.Args[0])) != nil {
		Main(filepath.Base(os.Args[0]))
	}
	os.Exit(m.Run())
}

// runPlugin runs the test binary under a plugin's name, as a CNI runtime
// runs a plugin program.
func runPlugin(t *testing.T, name, command, stdin string, env ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link)
	cmd.Env = append([]string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=c1", "CNI_NETNS=/dev/null", "CNI_IFNAME=eth0", "CNI_PATH=" + filepath.Dir(link)}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	return string(out), err
}

func TestMultiCallHostLocal(t *testing.T) {
	conf := `{"cniVersion":"1.0.0","name":"net","ipam":{"type":"host-local","dataDir":"` + t.TempDir() + `","ranges":[[{"subnet":"10.250.1.0/24"}]]}}`
	out, err := runPlugin(t, "host-local", "VERSION", conf)
	if err != nil || !strings.Contains(out, `"1.0.0"`) {
		t.Fatalf("VERSION: %q, %v", out, err)
	}
	out, err = runPlugin(t, "host-local", "ADD", conf)
	if err != nil {
		t.Fatalf("ADD: %v (%s)", err, out)
	}
	var res struct {
		CNIVersion string `json:"cniVersion"`
		IPs        []struct {
			Address string `json:"address"`
			Gateway string `json:"gateway"`
		} `json:"ips"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	if res.CNIVersion != "1.0.0" || len(res.IPs) != 1 || res.IPs[0].Address != "10.250.1.2/24" || res.IPs[0].Gateway != "10.250.1.1" {
		t.Fatalf("result %+v", res)
	}
	if out, err := runPlugin(t, "host-local", "DEL", conf); err != nil {
		t.Fatalf("DEL: %v (%s)", err, out)
	}
}

func TestMultiCallReportsErrorsAsCNIErrors(t *testing.T) {
	out, err := runPlugin(t, "bridge", "ADD", `{"cniVersion":"1.0.0","name":"net","type":"bridge","vlan":5,"ipam":{"type":"host-local"}}`)
	if err == nil {
		t.Fatalf("ADD with vlan succeeded: %s", out)
	}
	var cniErr struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if jerr := json.Unmarshal([]byte(out), &cniErr); jerr != nil || !strings.Contains(cniErr.Msg, "vlan not supported") {
		t.Fatalf("error output %q (%v)", out, jerr)
	}
}

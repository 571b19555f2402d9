package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

// TestUpRestartAndShutdown walks issue 2's user story: start, use it through
// the embedded kubectl, restart on the same data dir, find everything again,
// and stop leaving nothing behind.
func TestUpRestartAndShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: noNodes()})
	dataDir, port := c.DataDir, c.APIPort

	fi, err := os.Stat(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", fi.Mode().Perm())
	}
	kc, _ := os.ReadFile(c.Kubeconfig)
	if strings.Contains(string(kc), "insecure-skip-tls-verify") || !strings.Contains(string(kc), "certificate-authority-data") {
		t.Errorf("kubeconfig does not pin the CA:\n%s", kc)
	}

	// Ready means a pod can be created in namespace default at once: its
	// ServiceAccount and kube-root-ca.crt are there (kubectl apply right
	// after the ready line was refused with 'serviceaccount "default" not
	// found' before).
	kubectl(t, c, "", "get", "serviceaccount/default", "configmap/kube-root-ca.crt")

	out := kubectl(t, c, "", "version")
	if !strings.Contains(out, "Server Version: v1.37.2") || !strings.Contains(out, "Client Version: v1.37.2") {
		t.Errorf("kubectl version:\n%s", out)
	}
	kubectl(t, c, "", "create", "namespace", "shop")
	kubectl(t, c, "", "-n", "shop", "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
	waitFor(t, ctx, "a ReplicaSet and 2 pods for deployment web", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "-n", "shop", "get", "rs,pods", "-l", "app=web", "--no-headers")
		return err == nil && strings.Count(out, "replicaset.apps/web-") == 1 && strings.Count(out, "pod/web-") == 2, out
	})
	pods := kubectl(t, c, "", "-n", "shop", "get", "pods", "-l", "app=web", "-o", "name")

	// The apiserver's own validation refuses restartPolicy Always in a Job.
	job := `apiVersion: batch/v1
kind: Job
metadata:
  name: always
spec:
  template:
    spec:
      restartPolicy: Always
      containers:
      - name: c
        image: busybox
        command: ["true"]
`
	out, err = c.Kubectl(ctx, job, "-n", "shop", "apply", "-f", "-")
	if err == nil || !strings.Contains(out, `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`) &&
		!strings.Contains(out, `spec.template.spec.restartPolicy: Unsupported value: "Always"`) {
		t.Errorf("a Job with restartPolicy Always was not refused with the apiserver's message: err=%v\n%s", err, out)
	}

	took, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if took > 10*time.Second {
		t.Errorf("shutdown took %s, want under 10s", took)
	}
	if err := c.ExitErr(); err != nil {
		t.Errorf("quartet up exited with %v after SIGTERM, want 0", err)
	}
	if strings.Contains(c.Output.String(), "finished without leader elect") {
		t.Errorf("the stop reported the scheduler's normal end as an error:\n%s", c.Output.String())
	}
	if left := cluster.Leftovers(c.Pid()); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}

	// Same data dir, same port: objects and the old kubeconfig still work.
	c2 := start(t, cluster.Options{Args: noNodes(), DataDir: dataDir, APIPort: port})
	if got := kubectl(t, c2, "", "-n", "shop", "get", "pods", "-l", "app=web", "-o", "name"); got != pods {
		t.Errorf("pods after restart:\n%s\nwant:\n%s", got, pods)
	}
	kc2, _ := os.ReadFile(c2.Kubeconfig)
	if !strings.Contains(string(kc2), extractCA(string(kc))) {
		t.Error("the CA changed across a restart")
	}
}

// TestSystemKubectl checks that a separately installed kubectl works too.
func TestSystemKubectl(t *testing.T) {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH")
	}
	c := start(t, cluster.Options{Args: noNodes()})
	cmd := exec.Command(path, "get", "namespaces", "-o", "name")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
		t.Fatalf("%s get namespaces: %v\n%s", path, err, out)
	}
}

// TestBadInput checks each start-up mistake gives one clear line and a
// non-zero exit, without touching a running cluster.
func TestBadInput(t *testing.T) {
	c := start(t, cluster.Options{Args: noNodes()})
	bin := c.Bin
	readOnly := filepath.Join(t.TempDir(), "ro")
	if err := os.MkdirAll(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	free, _ := cluster.FreePort()
	cases := map[string]struct {
		args []string
		want string
	}{
		"port in use":        {[]string{"--data-dir", t.TempDir(), "--api-port", itoa(c.APIPort)}, "already in use"},
		"data dir in use":    {[]string{"--data-dir", c.DataDir, "--api-port", itoa(free)}, "is in use by another quartet"},
		"unknown mode":       {[]string{"--data-dir", t.TempDir(), "--workload-controllers", "kube"}, `--workload-controllers "kube": want quartet, upstream or none`},
		"unknown flag":       {[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		"bad port":           {[]string{"--data-dir", t.TempDir(), "--api-port", "70000"}, "--api-port 70000"},
		"unreachable etcd":   {[]string{"--data-dir", t.TempDir(), "--api-port", itoa(free), "--datastore-endpoint", "http://127.0.0.1:1"}, "is not reachable"},
		"malformed etcd URL": {[]string{"--data-dir", t.TempDir(), "--api-port", itoa(free), "--datastore-endpoint", "127.0.0.1:2379"}, "want http(s)://host:port"},
		"read-only data dir": {[]string{"--data-dir", filepath.Join(readOnly, "sub"), "--api-port", itoa(free)}, "data dir"},
		"negative api-qps":   {[]string{"--data-dir", t.TempDir(), "--api-port", itoa(free), "--api-qps", "-1"}, "--api-qps -1: want a number above 0"},
		"zero api-burst":     {[]string{"--data-dir", t.TempDir(), "--api-port", itoa(free), "--api-burst", "0"}, "--api-burst 0: want a number above 0"},
		"data dir path too long": {[]string{"--data-dir", filepath.Join(t.TempDir(), strings.Repeat("d", 100)), "--api-port", itoa(free)},
			"the path is too long for the unix sockets in it"},
	}
	if os.Geteuid() == 0 {
		delete(cases, "read-only data dir") // root writes anywhere
		cases["data dir is a file"] = struct {
			args []string
			want string
		}{[]string{"--data-dir", "/etc/hostname", "--api-port", itoa(free)}, "data dir /etc/hostname"}
		// Another user's data dir, or a file another user planted in
		// root's (images.yaml says what process pods run, as root).
		othersDir := filepath.Join(t.TempDir(), "theirs")
		planted := filepath.Join(t.TempDir(), "planted")
		for _, dir := range []string{othersDir, planted} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		images := filepath.Join(planted, "images.yaml")
		if err := os.WriteFile(images, []byte("busybox:\n  cmd: [/tmp/evil]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{othersDir, images} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
		cases["another user's data dir"] = struct {
			args []string
			want string
		}{[]string{"--data-dir", othersDir, "--api-port", itoa(free)}, othersDir + " belongs to uid 65534, not to the user running quartet"}
		cases["images.yaml planted by another user"] = struct {
			args []string
			want string
		}{[]string{"--data-dir", planted, "--api-port", itoa(free)}, images + " belongs to uid 65534, not to the user running quartet"}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, append([]string{"up"}, tc.args...)...).CombinedOutput()
			if err == nil {
				t.Fatalf("quartet up %v succeeded:\n%s", tc.args, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "quartet: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last line %q, want a quartet error containing %q; all output:\n%s", last, tc.want, out)
			}
		})
	}
	// The running cluster is untouched.
	kubectl(t, c, "", "get", "namespace", "default")
}

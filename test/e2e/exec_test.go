package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// kubectlBin is one kubectl the tests drive: quartet's own (v1.37, which
// streams over WebSocket) and the system's (v1.32, SPDY) when installed.
type kubectlBin struct {
	name string
	argv []string
	env  []string
}

func kubectls(t testing.TB, c *cluster.Cluster) []kubectlBin {
	env := append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	bins := []kubectlBin{{name: "quartet-kubectl", argv: []string{c.Bin, "kubectl"}, env: env}}
	if p, err := exec.LookPath("/usr/bin/kubectl"); err == nil {
		bins = append(bins, kubectlBin{name: "system-kubectl", argv: []string{p}, env: env})
	} else {
		t.Logf("no /usr/bin/kubectl: testing quartet's kubectl only")
	}
	return bins
}

func (k kubectlBin) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.argv[0], append(append([]string(nil), k.argv[1:]...), args...)...)
	cmd.Env = k.env
	return cmd
}

// run runs kubectl and returns stdout, stderr and the exit code.
func (k kubectlBin) run(ctx context.Context, stdin string, args ...string) (string, string, int) {
	cmd := k.command(ctx, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// buildPodServer builds test/podserver into a directory the test's pods
// mount (a container sees the host's programs, but not the host's /tmp).
func buildPodServer(t testing.TB) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "podserver"), "./test/podserver")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building podserver: %v\n%s", err, out)
	}
	return dir
}

// ports are the ports the web pod's server listens on.
var ports [2]int

const execPods = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: busybox
    command: ["/podserver/podserver", "PORT1", "PORT2"]
    workingDir: /work
    env:
    - name: GREETING
      value: hello from env
    securityContext:
      runAsUser: 1000
    volumeMounts:
    - {name: bin, mountPath: /podserver, readOnly: true}
    - {name: work, mountPath: /work}
  volumes:
  - name: bin
    hostPath: {path: PODSERVER, type: Directory}
  - name: work
    emptyDir: {}
---
apiVersion: v1
kind: Pod
metadata:
  name: simulated
spec:
  containers:
  - name: nginx
    image: nginx:1.27
---
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "exit 1"]
`

// TestExecPortForwardCp drives issue 16 through the binary with both
// kubectls: exec with and without a terminal, exit codes, stdin, cp both
// ways, port-forward with concurrent connections on two ports, the errors
// users know, and the kubelet API refusing requests without credentials.
func TestExecPortForwardCp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := buildPodServer(t)
	c := start(t, cluster.Options{Args: []string{"--nodes=1"}})
	// Without a pod network (not root) process pods share the host's
	// network: the server's ports must be free on the host.
	port1, _ := cluster.FreePort()
	port2, _ := cluster.FreePort()
	ports = [2]int{port1, port2}
	kubectl(t, c, strings.NewReplacer("PODSERVER", dir, "PORT1", itoa(port1), "PORT2", itoa(port2)).Replace(execPods), "apply", "-f", "-")
	kubectl(t, c, "", "wait", "--for=condition=Ready", "pod/web", "pod/simulated", "--timeout=120s")
	waitFor(t, ctx, "crasher in CrashLoopBackOff", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pod", "crasher", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
		return err == nil && out == "CrashLoopBackOff", out
	})

	for _, k := range kubectls(t, c) {
		t.Run(k.name, func(t *testing.T) {
			testExec(t, ctx, k)
			testExecTTY(t, ctx, k)
			testCp(t, ctx, k)
			testPortForward(t, ctx, k)
			testAttach(t, ctx, c, k)
			testDebug(t, ctx, c, k)
			testExecErrors(t, ctx, k)
		})
	}
	testKubeletAPIAuth(t, ctx, c)
}

func testExec(t *testing.T, ctx context.Context, k kubectlBin) {
	out, errOut, code := k.run(ctx, "", "exec", "web", "--", "sh", "-c", `echo "$GREETING"; id -u; pwd; echo oops >&2; exit 3`)
	if code != 3 || out != "hello from env\n1000\n/work\n" || !strings.Contains(errOut, "oops") ||
		!strings.Contains(errOut, "command terminated with exit code 3") {
		t.Errorf("exec: exit %d, stdout %q, stderr %q; want the container's env, user and working dir, and exit code 3", code, out, errOut)
	}
	out, errOut, code = k.run(ctx, "one\ntwo\n", "exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z; echo done")
	if code != 0 || out != "ONE\nTWO\ndone\n" {
		t.Errorf("exec -i: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := k.run(ctx, "", "exec", "web", "-c", "web", "--", "true"); code != 0 || out != "" {
		t.Errorf("exec true: exit %d, %q %q", code, out, errOut)
	}
}

// ptySession is kubectl on a terminal, as a person types into it.
type ptySession struct {
	pty *os.File
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func startPTY(t testing.TB, cmd *exec.Cmd, rows, cols uint16) *ptySession {
	t.Helper()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	s := &ptySession{pty: f, cmd: cmd}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		f.Close()
	})
	return s
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// expect waits (at most a minute) until the terminal has shown want.
func (s *ptySession) expect(t testing.TB, ctx context.Context, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	waitFor(t, ctx, fmt.Sprintf("terminal to show %q", want), func() (bool, string) {
		out := s.output()
		return strings.Contains(out, want), out
	})
}

func testExecTTY(t *testing.T, ctx context.Context, k kubectlBin) {
	s := startPTY(t, k.command(ctx, "exec", "-it", "web", "--", "env", "PS1=qt$ ", "sh"), 40, 100)
	s.expect(t, ctx, "qt$ ")
	_, _ = io.WriteString(s.pty, "tty; stty size\n")
	s.expect(t, ctx, "40 100")
	if out := s.output(); !strings.Contains(out, "/dev/pts/") {
		t.Errorf("tty in the session did not name a terminal:\n%s", out)
	}
	if err := pty.Setsize(s.pty, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	// kubectl learns the new size from SIGWINCH; ask until the shell sees it.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	waitFor(t, rctx, "the resized terminal", func() (bool, string) {
		_, _ = io.WriteString(s.pty, "stty size\n")
		time.Sleep(300 * time.Millisecond)
		out := s.output()
		return strings.Contains(out, "50 132"), out
	})
	_, _ = io.WriteString(s.pty, "exit 7\n")
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("kubectl exec -it ended with %v, want exit status 7", err)
	}
	s.expect(t, ctx, "command terminated with exit code 7")
}

func testCp(t *testing.T, ctx context.Context, k kubectlBin) {
	src := filepath.Join(t.TempDir(), "site")
	files := map[string]string{"index.html": "<h1>hi</h1>\n", "css/main.css": "body{}\n", "deep/er/x.txt": strings.Repeat("x", 100000)}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := "/work/site-" + k.name
	if out, errOut, code := k.run(ctx, "", "cp", src, "web:"+dst); code != 0 {
		t.Fatalf("cp to the pod: exit %d %s %s", code, out, errOut)
	}
	out, errOut, code := k.run(ctx, "", "exec", "web", "--", "cat", dst+"/css/main.css")
	if code != 0 || out != "body{}\n" {
		t.Errorf("the copied file in the pod: exit %d %q %q", code, out, errOut)
	}
	back := filepath.Join(t.TempDir(), "back")
	if out, errOut, code := k.run(ctx, "", "cp", "web:"+dst, back); code != 0 {
		t.Fatalf("cp from the pod: exit %d %s %s", code, out, errOut)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(back, name))
		if err != nil || string(got) != data {
			t.Errorf("%s copied back: %v, %d bytes, want %d", name, err, len(got), len(data))
		}
	}
}

// startPortForward runs kubectl port-forward until the test ends and
// returns once it forwards.
func startPortForward(t testing.TB, ctx context.Context, k kubectlBin, args ...string) *ptySession {
	t.Helper()
	cmd := k.command(ctx, append([]string{"port-forward"}, args...)...)
	s := startPTY(t, cmd, 24, 200)
	s.expect(t, ctx, "Forwarding from")
	return s
}

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func testPortForward(t *testing.T, ctx context.Context, k kubectlBin) {
	p1, _ := cluster.FreePort()
	p2, _ := cluster.FreePort()
	fwd := startPortForward(t, ctx, k, "pod/web", fmt.Sprintf("%d:%d", p1, ports[0]), fmt.Sprintf("%d:%d", p2, ports[1]))
	defer func() {
		if t.Failed() {
			t.Logf("kubectl port-forward said:\n%s", fwd.output())
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 25)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			port, want := p1, fmt.Sprintf("hello from web on %d\n", ports[0])
			if i%4 == 3 {
				port, want = p2, fmt.Sprintf("hello from web on %d\n", ports[1])
			}
			got, err := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil || got != want {
				errs <- fmt.Errorf("GET :%d = %q, %v; want %q", port, got, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/zero?n=%d", p1, 8<<20))
	if err != nil || len(got) != 8<<20 {
		t.Errorf("8 MiB through the forward: %d bytes, %v", len(got), err)
	}

	// A port nothing listens on: the error kubectl users know, and the
	// agent goes on serving.
	p3, _ := cluster.FreePort()
	s := startPortForward(t, ctx, k, "pod/web", fmt.Sprintf("%d:9999", p3))
	_, _ = httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p3))
	s.expect(t, ctx, "connect: connection refused")
	if out, errOut, code := k.run(ctx, "", "exec", "web", "--", "true"); code != 0 {
		t.Errorf("exec after a refused forward: exit %d %s %s", code, out, errOut)
	}
}

// testAttach attaches to a container that keeps stdin open (stdinOnce:
// it reads EOF when the client goes), then runs a pod with a terminal as
// `kubectl run -it --rm` does.
func testAttach(t *testing.T, ctx context.Context, c *cluster.Cluster, k kubectlBin) {
	name := "reader-" + k.name
	kubectl(t, c, `apiVersion: v1
kind: Pod
metadata:
  name: `+name+`
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo ready; while read l; do echo got $l; done; echo eof; exit 5"]
    stdin: true
    stdinOnce: true
`, "apply", "-f", "-")
	kubectl(t, c, "", "wait", "--for=condition=Ready", "pod/"+name, "--timeout=60s")
	out, errOut, code := k.run(ctx, "one\ntwo\n", "attach", "-i", name)
	if code != 0 || !strings.Contains(out, "got one\ngot two\neof\n") {
		t.Errorf("attach -i: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	waitFor(t, ctx, name+" ended with exit code 5 once its stdin closed", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pod", name, "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}")
		return err == nil && out == "5", out
	})

	tty := "tty-" + k.name
	s := startPTY(t, k.command(ctx, "run", "-it", "--rm", "--restart=Never", "--image=busybox", tty, "--", "env", "PS1=qt$ ", "sh"), 30, 90)
	// The shell printed its prompt before kubectl attached, as kubectl says.
	s.expect(t, ctx, "If you don't see a command prompt, try pressing enter.")
	_, _ = io.WriteString(s.pty, "\n")
	s.expect(t, ctx, "qt$ ")
	_, _ = io.WriteString(s.pty, "hostname; stty size\n")
	s.expect(t, ctx, tty+"\r\n30 90")
	_, _ = io.WriteString(s.pty, "exit\n")
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("kubectl run -it --rm: %v\n%s", err, s.output())
	}
	s.expect(t, ctx, `pod "`+tty+`" deleted`)
}

// testDebug runs an ephemeral container in the web pod that shares the
// server container's processes, and finds it in the pod's status.
func testDebug(t *testing.T, ctx context.Context, c *cluster.Cluster, k kubectlBin) {
	name := "dbg-" + k.name
	s := startPTY(t, k.command(ctx, "debug", "-it", "web", "--image=busybox", "--target=web", "-c", name), 40, 100)
	s.expect(t, ctx, "If you don't see a command prompt, try pressing enter.")
	_, _ = io.WriteString(s.pty, "\n")
	s.expect(t, ctx, "# ")
	_, _ = io.WriteString(s.pty, "ps -e -o args | grep -c '^/podserver/podserver'\n")
	// The terminal may echo the typed line before the shell prints its
	// prompt again, so the count can follow "# " rather than a new line.
	s.expect(t, ctx, "1\r\n")
	_, _ = io.WriteString(s.pty, "exit 4\n")
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("kubectl debug -it: %v\n%s", err, s.output())
	}
	waitFor(t, ctx, name+" terminated with exit code 4 in the pod's status", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pod", "web", "-o",
			`jsonpath={.status.ephemeralContainerStatuses[?(@.name=="`+name+`")].state.terminated.exitCode}`)
		return err == nil && out == "4", out
	})
}

func testExecErrors(t *testing.T, ctx context.Context, k kubectlBin) {
	cases := map[string]struct {
		args     []string
		wantCode int
		want     []string
	}{
		"a command that does not exist": {[]string{"exec", "web", "--", "no-such-command"}, 127,
			[]string{`exec: "no-such-command": executable file not found in $PATH` + "\ncommand terminated with exit code 127"}},
		"a simulated container": {[]string{"exec", "simulated", "--", "sh"}, 1,
			[]string{`container "nginx" of pod "simulated" is simulated`}},
		"a container that is not running": {[]string{"exec", "crasher", "--", "true"}, 1,
			[]string{`container not found ("c")`, "container is not running"}},
		"a container the pod does not have": {[]string{"exec", "web", "-c", "nope", "--", "true"}, 1,
			[]string{"container nope is not valid for pod web"}},
	}
	for name, tc := range cases {
		out, errOut, code := k.run(ctx, "", tc.args...)
		if code != tc.wantCode || !containsAny(out+errOut, tc.want) {
			t.Errorf("%s: exit %d, output %q %q; want exit %d and one of %q", name, code, out, errOut, tc.wantCode, tc.want)
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// testKubeletAPIAuth calls a node's kubelet API directly: no credentials
// gets 401, a token without nodes/proxy 403, and one with it runs /run.
func testKubeletAPIAuth(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	port := kubectl(t, c, "", "get", "node", "node-1", "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}")
	// The kubelet API listens on the node's InternalIP (the pod bridge's
	// host address with a pod network, 127.0.0.1 without one).
	addr := kubectl(t, c, "", "get", "node", "node-1", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
	caPEM, err := os.ReadFile(filepath.Join(datadir.Dir(c.DataDir).PKI(), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(method, path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+net.JoinHostPort(addr, port)+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	run := "/run/default/web/web?cmd=echo+ran"
	if code, body := call(http.MethodPost, run, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous POST %s = %d %q, want 401", run, code, body)
	}
	if code, body := call(http.MethodGet, "/exec/default/web/web?command=true&output=1", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous exec = %d %q, want 401", code, body)
	}
	kubectl(t, c, "", "create", "serviceaccount", "ops")
	token := strings.TrimSpace(kubectl(t, c, "", "create", "token", "ops"))
	if code, body := call(http.MethodPost, run, token); code != http.StatusForbidden ||
		!strings.Contains(body, "Forbidden (user=system:serviceaccount:default:ops, verb=create, resource=nodes, subresource(s)=[proxy])") {
		t.Errorf("POST %s with a token without nodes/proxy = %d %q, want 403", run, code, body)
	}
	kubectl(t, c, "", "create", "clusterrole", "node-proxy", "--verb=create", "--resource=nodes/proxy")
	kubectl(t, c, "", "create", "clusterrolebinding", "ops-node-proxy", "--clusterrole=node-proxy", "--serviceaccount=default:ops")
	// The agent caches a denial for 30 s, as a kubelet does.
	waitFor(t, ctx, "the token to be allowed", func() (bool, string) {
		code, body := call(http.MethodPost, run, token)
		return code == http.StatusOK && body == "ran\n", fmt.Sprintf("%d %q", code, body)
	})
}

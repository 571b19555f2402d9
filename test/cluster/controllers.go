package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// ControllersNamespace and ControllersAccount are deploy/'s namespace and
// service account.
const (
	ControllersNamespace = "quartet-system"
	ControllersAccount   = "quartet-controllers"
)

// InstallControllerAccess applies deploy/'s manifests (files relative to
// deploy/, e.g. "quartet-controllers.yaml") to the cluster, all but the
// Deployment and Service (the tests run `quartet controllers` as processes
// beside the cluster), and writes a kubeconfig for the quartet-controllers
// service account: the identity and permissions a real install has.
func (c *Cluster) InstallControllerAccess(ctx context.Context, files ...string) (kubeconfig string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var docs []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, "deploy", f))
		if err != nil {
			return "", err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return "", fmt.Errorf("deploy/%s: %w", f, err)
			}
			var obj struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				return "", fmt.Errorf("deploy/%s: %w", f, err)
			}
			if obj.Kind != "" && obj.Kind != "Deployment" && obj.Kind != "Service" {
				docs = append(docs, string(doc))
			}
		}
	}
	if out, err := c.Kubectl(ctx, strings.Join(docs, "\n---\n"), "apply", "-f", "-"); err != nil {
		return "", fmt.Errorf("applying deploy/: %w\n%s", err, out)
	}
	return c.ServiceAccountKubeconfig(ctx, ControllersNamespace, ControllersAccount)
}

// ServiceAccountKubeconfig writes a kubeconfig (in the data dir) that
// reaches the cluster with a token of the service account namespace/name,
// as a pod of that account would.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) (kubeconfig string, err error) {
	client, err := c.Client()
	if err != nil {
		return "", err
	}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", namespace, name, err)
	}
	admin, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	for name, cl := range admin.Clusters {
		cfg.Clusters[name] = cl
		cfg.AuthInfos["controllers"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
		cfg.Contexts["controllers"] = &clientcmdapi.Context{Cluster: name, AuthInfo: "controllers"}
		cfg.CurrentContext = "controllers"
		break
	}
	kubeconfig = filepath.Join(c.DataDir, namespace+"-"+name+".kubeconfig")
	return kubeconfig, clientcmd.WriteToFile(*cfg, kubeconfig)
}

// Controllers is one `quartet controllers` process.
type Controllers struct {
	Name   string
	Args   []string
	Output *syncBuffer
	// HealthAddr and MetricsAddr are its loopback endpoints.
	HealthAddr, MetricsAddr string

	bin     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// StartControllers runs `quartet controllers --kubeconfig FILE args...`
// with loopback health and metrics endpoints on free ports and the replica
// name as its Lease identity, and waits until it has passed its start-up
// checks (it then waits for the Lease, or runs). It returns an error with
// the output when the process exits first.
func StartControllers(name, kubeconfig string, args ...string) (*Controllers, error) {
	EnableSubreaper()
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	hp, err := FreePort()
	if err != nil {
		return nil, err
	}
	mp, err := FreePort()
	if err != nil {
		return nil, err
	}
	k := &Controllers{Name: name, bin: bin, Output: &syncBuffer{},
		HealthAddr: "127.0.0.1:" + strconv.Itoa(hp), MetricsAddr: "127.0.0.1:" + strconv.Itoa(mp)}
	k.Args = append([]string{"controllers", "--kubeconfig", kubeconfig, "--leader-elect-identity", name,
		"--health-address", k.HealthAddr, "--metrics-address", k.MetricsAddr}, args...)
	return k, k.launch()
}

// StartedLine is what `quartet controllers` prints once its checks passed.
var startedLines = []string{"  waiting for the Lease", "  running (no leader election)"}

func (k *Controllers) launch() error {
	cmd := exec.Command(k.bin, k.Args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	k.mu.Lock()
	k.cmd, k.exited = cmd, exited
	k.mu.Unlock()
	go func() {
		err := cmd.Wait()
		k.mu.Lock()
		k.exitErr = err
		k.mu.Unlock()
		pw.Close()
		close(exited)
	}()
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text() + "\n"
			k.Output.WriteString(line)
			for _, s := range startedLines {
				if !signalled && strings.HasPrefix(line, s) {
					signalled = true
					close(started)
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-started:
		return nil
	case <-exited:
		return fmt.Errorf("quartet controllers (%s) exited at start (%v):\n%s", k.Name, k.ExitErr(), k.Output.String())
	case <-time.After(2 * time.Minute):
		_ = k.Kill()
		return fmt.Errorf("quartet controllers (%s) did not start within 2 minutes:\n%s", k.Name, k.Output.String())
	}
}

// Leading reports whether the process has said it leads and not since
// stopped.
func (k *Controllers) Leading() bool {
	out := k.Output.String()
	if i := strings.LastIndex(out, "--- restart ---"); i >= 0 {
		out = out[i:]
	}
	return strings.Contains(out, "  leading (") && !k.Exited()
}

// Exited reports whether the process has exited.
func (k *Controllers) Exited() bool {
	k.mu.Lock()
	ch := k.exited
	k.mu.Unlock()
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ExitErr waits for the process to exit and returns its status.
func (k *Controllers) ExitErr() error {
	k.mu.Lock()
	ch := k.exited
	k.mu.Unlock()
	<-ch
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.exitErr
}

// Kill sends SIGKILL (a crash: the Lease is not released) and waits.
func (k *Controllers) Kill() error {
	k.mu.Lock()
	cmd := k.cmd
	k.mu.Unlock()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = k.ExitErr()
	return nil
}

// Stop sends SIGTERM (a graceful hand-over) and waits up to 15 s.
func (k *Controllers) Stop() error {
	if k.Exited() {
		return nil
	}
	k.mu.Lock()
	cmd, ch := k.cmd, k.exited
	k.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch:
		return nil
	case <-time.After(15 * time.Second):
		_ = k.Kill()
		return fmt.Errorf("quartet controllers (%s) did not exit within 15s of SIGTERM", k.Name)
	}
}

// Restart starts an exited process again with the same flags.
func (k *Controllers) Restart() error {
	if !k.Exited() {
		return errors.New("restart: still running")
	}
	k.Output.WriteString("--- restart ---\n")
	return k.launch()
}

// Cleanup stops the process and reports any process it left.
func (k *Controllers) Cleanup() error {
	err := k.Stop()
	k.mu.Lock()
	pid := k.cmd.Process.Pid
	k.mu.Unlock()
	if left := Leftovers(pid); len(left) > 0 {
		return fmt.Errorf("processes left behind by quartet controllers (pid %d): %s", pid, strings.Join(left, "; "))
	}
	return err
}

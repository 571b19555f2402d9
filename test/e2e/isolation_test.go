package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
)

// seccompBuiltIn reports whether the binary under test links libseccomp:
// make build (and the harness) set the seccomp tag when it is installed.
func seccompBuiltIn(t *testing.T) bool {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("make", "-s", "-C", root, "print-tags").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(out), "seccomp")
}

// TestPodSeccomp: seccompProfile through the binary. RuntimeDefault (the
// pod's or the container's) puts the container under a seccomp filter; no
// profile or Unconfined runs it unconfined; Localhost is refused, as is
// RuntimeDefault by a binary built without libseccomp.
func TestPodSeccomp(t *testing.T) {
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	builtIn := seccompBuiltIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: []string{"--nodes=1", "--runtime=process"}})
	pod := func(name, podProfile, ctrProfile string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: Never
  securityContext: {%s}
  containers:
  - name: c
    image: busybox
    command: ["grep", "Seccomp:", "/proc/self/status"]
    securityContext: {%s}
---
`, name, podProfile, ctrProfile)
	}
	rd, unconfined := "seccompProfile: {type: RuntimeDefault}", "seccompProfile: {type: Unconfined}"
	kubectl(t, c, pod("pod-default", rd, "")+pod("ctr-default", unconfined, rd)+pod("none", "", "")+
		pod("ctr-unconfined", rd, unconfined)+pod("localhost", "", "seccompProfile: {type: Localhost, localhostProfile: p.json}"), "apply", "-f", "-")

	logs := func(name, want string) {
		waitFor(t, ctx, name+" says "+want, func() (bool, string) {
			out, err := c.Kubectl(ctx, "", "logs", name)
			return err == nil && strings.TrimSpace(out) == want, out + fmt.Sprint(err)
		})
	}
	refused := func(name, substr string) {
		waitFor(t, ctx, name+" refused", func() (bool, string) {
			p, err := getPod(ctx, c, name)
			if err != nil || len(p.Status.ContainerStatuses) != 1 {
				return false, fmt.Sprint(err)
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			return w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, substr), fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
		})
	}
	logs("none", "Seccomp:\t0")
	logs("ctr-unconfined", "Seccomp:\t0")
	refused("localhost", "seccomp profile type Localhost is not supported")
	if builtIn {
		logs("pod-default", "Seccomp:\t2")
		logs("ctr-default", "Seccomp:\t2")
	} else {
		refused("pod-default", "seccompProfile RuntimeDefault cannot be applied: this quartet was built without libseccomp")
		refused("ctr-default", "seccompProfile RuntimeDefault cannot be applied")
	}
}

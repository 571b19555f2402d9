package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
	"quartet.dev/quartet/test/imagetest"
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

// TestPodNamespaces: the containers of a pod share its IPC and UTS
// namespaces (the hostname is the pod's) and its /dev/shm, and with
// shareProcessNamespace its PID namespace, held by the pod's pause
// container: image containers (oci) and host-program containers (process,
// the same libcontainer path). Without shareProcessNamespace a container
// sees only its own processes. Deleting the pods removes their pause
// containers and /dev/shm mounts.
func TestPodNamespaces(t *testing.T) {
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	reg := imagetest.NewRegistry(nil)
	defer reg.Close()
	image := pushApp(t, reg, "app:ns")
	c := start(t, cluster.Options{Args: []string{"--nodes=1"}})
	pod := func(name, extra, ctr string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
spec:
  terminationGracePeriodSeconds: 1
  %[2]s
  containers:
  - {name: a, %[3]s}
  - {name: b, %[3]s}
---
`, name, extra, ctr)
	}
	app := fmt.Sprintf(`image: %q, args: ["sleep"]`, image)
	kubectl(t, c, pod("shared", "shareProcessNamespace: true", app)+pod("separate", "hostname: box", app)+
		pod("hostprograms", "shareProcessNamespace: true", `image: busybox, command: ["sleep", "600"]`), "apply", "-f", "-")
	for _, name := range []string{"shared", "separate", "hostprograms"} {
		waitFor(t, ctx, name+" running", func() (bool, string) {
			p, err := getPod(ctx, c, name)
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 2 &&
				p.Status.ContainerStatuses[0].State.Running != nil && p.Status.ContainerStatuses[1].State.Running != nil, fmt.Sprintf("%+v", p.Status)
		})
	}
	ns := func(pod, container string, argv ...string) map[string]string {
		out := kubectl(t, c, "", append([]string{"exec", pod, "-c", container, "--"}, argv...)...)
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	appNS := []string{"/app", "ns"}
	// The process runtime's containers run the host's sh and readlink.
	sh := []string{"sh", "-c", `echo hostname=$(hostname); for n in ipc uts pid; do echo $n=$(readlink /proc/self/ns/$n); done; ` +
		`echo processes=$(for p in /proc/[0-9]*; do cat $p/comm; done 2>/dev/null | sort | tr '\n' ,)`}
	for _, tc := range []struct {
		pod, hostname string
		argv          []string
		share         bool
		// sleepers is how many sleeping processes (sleep, or the app's
		// sleep and the app looking) container b sees at least (share) or
		// at most.
		sleepers int
	}{{"shared", "shared", appNS, true, 3}, {"separate", "box", appNS, false, 2}, {"hostprograms", "hostprograms", sh, true, 2}} {
		a, b := ns(tc.pod, "a", tc.argv...), ns(tc.pod, "b", tc.argv...)
		if a["hostname"] != tc.hostname || b["hostname"] != tc.hostname {
			t.Errorf("%s: hostnames %q and %q, want %q", tc.pod, a["hostname"], b["hostname"], tc.hostname)
		}
		for _, n := range []string{"ipc", "uts"} {
			if a[n] == "" || a[n] != b[n] {
				t.Errorf("%s: containers a and b in %s namespaces %q and %q, want the pod's", tc.pod, n, a[n], b[n])
			}
		}
		if a["pid"] == "" || tc.share != (a["pid"] == b["pid"]) {
			t.Errorf("%s: PID namespaces %q and %q (shareProcessNamespace %v)", tc.pod, a["pid"], b["pid"], tc.share)
		}
		// With shareProcessNamespace the pause (PID 1) and both
		// containers' processes; else the container's own only.
		sleepers, pause := 0, false
		for _, name := range strings.Split(b["processes"], ",") {
			sleepers += map[string]int{"sleep": 1, "app": 1}[name]
			pause = pause || name == "pause"
		}
		if tc.share && (!pause || sleepers < tc.sleepers) || !tc.share && (pause || sleepers > tc.sleepers) {
			t.Errorf("%s: container b sees the processes %s (shareProcessNamespace %v)", tc.pod, b["processes"], tc.share)
		}
	}
	// /dev/shm is the pod's.
	kubectl(t, c, "", "exec", "separate", "-c", "a", "--", "/app", "write", "/dev/shm/from-a")
	if out := kubectl(t, c, "", "exec", "separate", "-c", "b", "--", "/app", "cat", "/dev/shm/from-a"); out != "x" {
		t.Errorf("container b reads %q from a's /dev/shm/from-a", out)
	}

	kubectl(t, c, "", "delete", "pod", "shared", "separate", "hostprograms", "--wait")
	waitFor(t, ctx, "no pause container or /dev/shm left", func() (bool, string) {
		// libcontainer's state lives outside the data dir (datadir.Containers).
		entries, err := os.ReadDir(datadir.Dir(c.DataDir).Containers())
		m := mountsUnder(filepath.Join(c.DataDir, "nodes"))
		return err == nil && len(entries) == 0 && len(m) == 0, fmt.Sprintf("containers %v, mounts %v, %v", entries, m, err)
	})
}

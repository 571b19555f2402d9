package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
)

// cgroupProcs lists the pids in the containers' cgroups of a data dir.
func cgroupProcs(dataDir string) []int {
	files, _ := filepath.Glob("/sys/fs/cgroup/pids/" + runc.CgroupParentFor(dataDir) + "/*/cgroup.procs")
	v2, _ := filepath.Glob("/sys/fs/cgroup/" + runc.CgroupParentFor(dataDir) + "/*/cgroup.procs")
	var pids []int
	for _, f := range append(files, v2...) {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(l); err == nil {
				pids = append(pids, p)
			}
		}
	}
	return pids
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestProcessContainers checks what issue 13 asks of process pods run as
// root: their own PID namespace, the host read-only, quartet's data dir and
// process out of sight, securityContext and subPath refusals, memory limits
// (OOMKilled), and that no process survives a kill -9 of quartet or runs
// twice after the restart.
func TestProcessContainers(t *testing.T) {
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: []string{"--nodes=1", "--runtime=process"}})
	outside := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(outside, "etcl")); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`echo pid=$$$$
test -e %[1]s/pki || echo data dir hidden
test -e /proc/%[2]d || echo quartet hidden
touch /etc/quartet-e2e 2>/dev/null || echo etc read-only
setsid sleep 300 &
sleep 300 &
echo started
wait`, c.DataDir, c.Pid())
	kubectl(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: long
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", %q]
---
apiVersion: v1
kind: Pod
metadata:
  name: nonroot
spec:
  securityContext:
    runAsNonRoot: true
  containers:
  - name: c
    image: busybox
    command: ["id"]
---
apiVersion: v1
kind: Pod
metadata:
  name: escape
spec:
  volumes:
  - name: v
    hostPath:
      path: %s
  containers:
  - name: c
    image: busybox
    command: ["ls", "/sub"]
    volumeMounts:
    - name: v
      mountPath: /sub
      subPath: etcl
---
apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "head -c 300000000 /dev/zero | tail"]
    resources:
      limits:
        memory: 32Mi
`, script, outside), "apply", "-f", "-")

	waitingReason := func(name, reason, substr string) {
		waitFor(t, ctx, name+" "+reason, func() (bool, string) {
			p, err := getPod(ctx, c, name)
			if err != nil || len(p.Status.ContainerStatuses) != 1 {
				return false, fmt.Sprint(err)
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			return w != nil && w.Reason == reason && strings.Contains(w.Message, substr), fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
		})
	}
	waitingReason("nonroot", "CreateContainerConfigError", `container has runAsNonRoot and image will run as root (pod: "nonroot_default(`)
	waitingReason("escape", "CreateContainerConfigError", "leads out of its volume")
	waitFor(t, ctx, "hog OOMKilled", func() (bool, string) {
		p, err := getPod(ctx, c, "hog")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.Reason == "OOMKilled" && term.ExitCode == 137, fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
	})

	var firstID string
	waitFor(t, ctx, "long started", func() (bool, string) {
		out, _ := c.Kubectl(ctx, "", "logs", "long")
		p, err := getPod(ctx, c, "long")
		if err == nil && len(p.Status.ContainerStatuses) == 1 {
			firstID = p.Status.ContainerStatuses[0].ContainerID
		}
		return strings.Contains(out, "started"), out
	})
	logs := kubectl(t, c, "", "logs", "long")
	for _, want := range []string{"pid=1\n", "data dir hidden\n", "quartet hidden\n", "etc read-only\n"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs of long lack %q:\n%s", want, logs)
		}
	}
	pids := cgroupProcs(c.DataDir)
	if len(pids) < 3 { // sh, setsid sleep, sleep
		t.Fatalf("pids in the containers' cgroups: %v", pids)
	}

	// kill -9: every process of every container dies with quartet.
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.ExitErr()
	waitFor(t, ctx, "the containers' processes gone after kill -9", func() (bool, string) {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		return len(left) == 0, fmt.Sprint(left)
	})
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "long restarted once", func() (bool, string) {
		p, err := getPod(ctx, c, "long")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.State.Running != nil && cs.ContainerID != firstID && cs.RestartCount == 1, fmt.Sprintf("%+v", cs)
	})
	waitFor(t, ctx, "one container's processes after the restart", func() (bool, string) {
		var now []int
		for _, p := range cgroupProcs(c.DataDir) {
			// Not the pods' pause containers.
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); string(b) != "pause\n" {
				now = append(now, p)
			}
		}
		for _, p := range now {
			for _, q := range pids {
				if p == q {
					return false, fmt.Sprintf("old process %d runs again", p)
				}
			}
		}
		return len(now) == 3, fmt.Sprint(now)
	})
	p, err := getPod(ctx, c, "long")
	if err != nil || p.Status.ContainerStatuses[0].LastTerminationState.Terminated == nil {
		t.Errorf("long's last state after the restart: %v %+v", err, p)
	}
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := cgroupProcs(c.DataDir); len(left) > 0 {
		t.Errorf("processes left in the containers' cgroups: %v", left)
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + runc.CgroupParentFor(c.DataDir)); len(dirs) > 0 {
		t.Errorf("cgroups left behind: %v", dirs)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), c.DataDir) {
		t.Errorf("mounts left under the data dir")
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/test/cluster"
)

// TestNodesRunPods walks issue 3's user story through the binary: three
// nodes, a process pod's exit code and logs, crash-loop back-off, a
// Deployment spread and drained, and a node added at run time.
func TestNodesRunPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: []string{"--nodes=3", "--runtime=auto"}})

	waitFor(t, ctx, "3 Ready nodes", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 3, out
	})

	// A real process: exit code 3, restartPolicy Never, logs kept.
	kubectl(t, c, `apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo hello; exit 3"]
`, "apply", "-f", "-")
	waitFor(t, ctx, "hello Failed with exit code 3", func() (bool, string) {
		p, err := getPod(ctx, c, "hello")
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase != corev1.PodFailed || len(p.Status.ContainerStatuses) != 1 {
			return false, string(p.Status.Phase)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.ExitCode == 3, fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
	})
	if out := kubectl(t, c, "", "logs", "hello"); strings.TrimSpace(out) != "hello" {
		t.Errorf("kubectl logs hello = %q, want hello", out)
	}

	// restartPolicy OnFailure: restarts with a growing back-off.
	kubectl(t, c, `apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  restartPolicy: OnFailure
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo try; exit 1"]
`, "apply", "-f", "-")
	waitFor(t, ctx, "crasher restarted twice and in CrashLoopBackOff", func() (bool, string) {
		p, err := getPod(ctx, c, "crasher")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		waiting := cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
		return cs.RestartCount >= 2 && waiting, fmt.Sprintf("restarts=%d state=%+v", cs.RestartCount, cs.State)
	})
	if out := kubectl(t, c, "", "get", "pod", "crasher", "--no-headers"); !strings.Contains(out, "CrashLoopBackOff") {
		t.Errorf("kubectl get pod crasher: %s", out)
	}

	// Bare pods would make drain refuse node-1 (as in any cluster): delete them.
	kubectl(t, c, "", "delete", "pod", "hello", "crasher", "--timeout=1m")

	// A 6-replica Deployment spreads over the 3 nodes and goes Ready.
	kubectl(t, c, "", "create", "deployment", "web", "--image=nginx:1.27", "--replicas=6")
	waitFor(t, ctx, "6 Ready pods on 3 nodes", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}")
		if err != nil {
			return false, err.Error()
		}
		nodes, ready := map[string]bool{}, 0
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[1] == "True" {
				ready++
				nodes[f[0]] = true
			}
		}
		return ready == 6 && len(nodes) == 3, out
	})

	// cordon + drain move the pods off node-1.
	kubectl(t, c, "", "drain", "node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2m")
	waitFor(t, ctx, "6 Ready pods, none on node-1", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pods", "-l", "app=web", "--field-selector=status.phase=Running", "-o", "wide", "--no-headers")
		return err == nil && strings.Count(out, "1/1") == 6 && !strings.Contains(out, "node-1"), out
	})
	if out := kubectl(t, c, "", "get", "node", "node-1", "--no-headers"); !strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("node-1 after drain: %s", out)
	}

	// A node added at run time comes up Ready, with its labels.
	if out, err := c.Quartet(ctx, "node", "add", "node-4", "--label", "hardware=gpu"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out := kubectl(t, c, "", "get", "node", "node-4", "-L", "hardware", "--no-headers")
	if !strings.Contains(out, " Ready ") || !strings.Contains(out, "gpu") {
		t.Errorf("node-4: %s", out)
	}
	if out, err := c.Quartet(ctx, "node", "add", "node-4"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("adding node-4 twice: err=%v %s", err, out)
	}
	if out, err := c.Quartet(ctx, "node", "remove", "node-9"); err == nil || !strings.Contains(out, "no such node") {
		t.Errorf("removing an unknown node: err=%v %s", err, out)
	}
	if out, err := c.Quartet(ctx, "node", "remove", "node-4"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitFor(t, ctx, "node-4 gone", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "nodes", "--no-headers")
		return err == nil && !strings.Contains(out, "node-4"), out
	})
	// The start helper's cleanup checks that no process outlives quartet up.
}

// TestUpNodeFlagsErrors checks that node flags are validated before start.
func TestUpNodeFlagsErrors(t *testing.T) {
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args []string
		want string
	}{
		"label for a missing node": {[]string{"--nodes=2", "--node-label=node-3:hardware=gpu"}, "there is no node-3"},
		"malformed label":          {[]string{"--node-label=node-1"}, "want NODE:KEY=VALUE"},
		"bad taint effect":         {[]string{"--node-taint=node-1:k=v:Sometimes"}, "is not one of NoSchedule, PreferNoSchedule, NoExecute"},
		"unknown runtime":          {[]string{"--runtime=docker"}, `--runtime "docker": want auto, oci, process or sim`},
		"negative nodes":           {[]string{"--nodes=-1"}, "--nodes -1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"up", "--data-dir", t.TempDir()}, tc.args...)
			out, err := runBinary(bin, args...)
			if err == nil || !strings.Contains(out, tc.want) || !strings.HasPrefix(strings.TrimSpace(out), "quartet: ") {
				t.Errorf("quartet %v: err=%v, want a quartet error with %q; output:\n%s", tc.args, err, tc.want, out)
			}
		})
	}
}

func getPod(ctx context.Context, c *cluster.Cluster, name string) (*corev1.Pod, error) {
	out, err := c.Kubectl(ctx, "", "get", "pod", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var p corev1.Pod
	return &p, json.Unmarshal([]byte(out), &p)
}

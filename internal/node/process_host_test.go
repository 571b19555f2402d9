package node

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"quartet.dev/quartet/internal/node/runtime"
)

func shellPod(name, script string, restart v1.RestartPolicy, opts ...podOpt) *v1.Pod {
	p := boundPod(name, withRestart(restart))
	p.Spec.Containers[0].Image = "busybox"
	p.Spec.Containers[0].Command = []string{"sh", "-c", script}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestProcessPodExitCodeAndLogs(t *testing.T) {
	th := startHost(t, RuntimeProcess, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(shellPod("hello", "echo hello; exit 3", v1.RestartPolicyNever))
	p := th.waitPod("hello", "Failed", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	cs := containerStatusOf(p, "c")
	if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 || cs.State.Terminated.Reason != "Error" ||
		!strings.HasPrefix(cs.ContainerID, "process://") {
		t.Fatalf("container status = %+v", cs)
	}
	body, code := getLogs(th.h.agents["node-1"], "/containerLogs/default/hello/c")
	if code != http.StatusOK || body != "hello\n" {
		t.Errorf("logs = %d %q, want 200 \"hello\\n\"", code, body)
	}
	body, _ = getLogs(th.h.agents["node-1"], "/containerLogs/default/hello/c?timestamps=true")
	if !strings.HasSuffix(body, " hello\n") || !strings.HasPrefix(body, "2026-01-02T03:04:05") {
		t.Errorf("logs with timestamps = %q", body)
	}
}

func TestProcessPodRestartsWithPreviousLog(t *testing.T) {
	th := startHost(t, RuntimeProcess, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(shellPod("again", "echo run; exit 1", v1.RestartPolicyOnFailure))
	p := th.waitPod("again", "restarted once", func(p *v1.Pod) bool {
		cs := containerStatusOf(p, "c")
		return cs.RestartCount == 1 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	if p.Status.Phase != v1.PodRunning {
		t.Errorf("phase = %s", p.Status.Phase)
	}
	a := th.h.agents["node-1"]
	if body, code := getLogs(a, "/containerLogs/default/again/c?previous=true"); code != http.StatusOK || body != "run\n" {
		t.Errorf("previous logs = %d %q", code, body)
	}
}

func TestProcessPodMissingConfigMap(t *testing.T) {
	th := startHost(t, RuntimeProcess, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(shellPod("cfg", "echo $FOO", v1.RestartPolicyNever, func(p *v1.Pod) {
		p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "FOO", ValueFrom: &v1.EnvVarSource{
			ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}, Key: "k"}}}}
	}))
	th.createPod(shellPod("fine", "echo fine", v1.RestartPolicyNever))
	p := th.waitPod("cfg", "CreateContainerConfigError", func(p *v1.Pod) bool {
		w := containerStatusOf(p, "c").State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	if msg := containerStatusOf(p, "c").State.Waiting.Message; msg != `configmap "missing" not found` {
		t.Errorf("message = %q", msg)
	}
	th.waitPod("fine", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
}

func TestProcessEnvAndVolumes(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "conf", Namespace: "default"}, Data: map[string]string{"greeting": "hi", "file.txt": "from configmap"}}
	th := startHost(t, RuntimeProcess, "", cm)
	th.addNode(NodeSpec{Name: "node-1"})
	script := `echo "$POD_NAME $NS $NODE $GREETING $LABEL $EXPANDED"; echo "$GREETING" > /data/out; cat /etc/conf/file.txt; echo; cat /etc/podinfo/name; echo; hostname`
	th.createPod(shellPod("env", script, v1.RestartPolicyNever, func(p *v1.Pod) {
		p.Labels = map[string]string{"app": "web"}
		p.Spec.Hostname = "web-0"
		c := &p.Spec.Containers[0]
		c.Env = []v1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "GREETING", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}, Key: "greeting"}}},
			{Name: "LABEL", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "EXPANDED", Value: "$(POD_NAME)-x"},
		}
		c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "conf", MountPath: "/etc/conf"}, {Name: "podinfo", MountPath: "/etc/podinfo"}}
		p.Spec.Volumes = []v1.Volume{
			{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
			{Name: "conf", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}}}},
			{Name: "podinfo", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		}
	}))
	p := th.waitPod("env", "finished", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed })
	body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/env/c")
	if p.Status.Phase != v1.PodSucceeded {
		t.Fatalf("phase %s, logs:\n%s\nstatus %+v", p.Status.Phase, body, containerStatusOf(p, "c"))
	}
	lines := strings.Split(body, "\n")
	if lines[0] != "env default node-1 hi web env-x" {
		t.Errorf("env line = %q", lines[0])
	}
	if th.h.isolated {
		want := "env default node-1 hi web env-x\nfrom configmap\nenv\nweb-0\n"
		if body != want {
			t.Errorf("logs = %q, want %q", body, want)
		}
		rec := th.h.record(p.UID)
		if rec == nil {
			t.Fatal("no record")
		}
		if b, err := os.ReadFile(rec.volumes["data"] + "/out"); err != nil || string(b) != "hi\n" {
			t.Errorf("emptyDir file = %q %v", b, err)
		}
	}
}

// TestRestartReconciles runs a pod, stops the host, and starts a new host on
// the same data dir and API: the lost process is restarted once, with the
// restart counted, and the old process is gone.
func TestRestartReconciles(t *testing.T) {
	dir := t.TempDir()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "n1"}, Spec: v1.NodeSpec{PodCIDR: "10.244.1.0/24"}})
	th := startHostWith(t, RuntimeProcess, dir, client)
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(shellPod("long", "sleep 300", v1.RestartPolicyAlways))
	p := th.waitPod("long", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	firstID := containerStatusOf(p, "c").ContainerID
	rec := th.h.record(p.UID)
	rec.mu.Lock()
	pid := rec.instances["c"].(interface{ Pid() int }).Pid()
	rec.mu.Unlock()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container process %d not running: %v", pid, err)
	}
	th.stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("process %d outlived the host", pid)
	}

	th2 := startHostWith(t, RuntimeProcess, dir, client)
	th2.addNode(NodeSpec{Name: "node-1"})
	p = th2.waitPod("long", "restarted", func(p *v1.Pod) bool {
		cs := containerStatusOf(p, "c")
		return cs.State.Running != nil && cs.ContainerID != firstID
	})
	cs := containerStatusOf(p, "c")
	if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.Reason != "ContainerStatusUnknown" {
		t.Errorf("after restart: %+v", cs)
	}
	// Exactly one instance runs.
	rec = th2.h.record(p.UID)
	if rec == nil || len(rec.instances) != 1 {
		t.Errorf("instances after restart: %+v", rec)
	}
}

func TestUnrunnableImageAndAutoMode(t *testing.T) {
	th := startHost(t, RuntimeProcess, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(boundPod("nginx"))
	p := th.waitPod("nginx", "ErrImageNeverPull", func(p *v1.Pod) bool {
		w := containerStatusOf(p, "c").State.Waiting
		return w != nil && w.Reason == "ErrImageNeverPull"
	})
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.Contains(msg, `"nginx:1.27" has no local entrypoint`) {
		t.Errorf("message = %q", msg)
	}
	if p.Status.Phase != v1.PodPending {
		t.Errorf("phase = %s", p.Status.Phase)
	}

	auto := startHost(t, RuntimeAuto, "")
	auto.addNode(NodeSpec{Name: "node-1"})
	auto.createPod(boundPod("mixed", func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "sh", Image: "busybox", Command: []string{"sleep", "30"}})
	}))
	p = auto.waitPod("mixed", "Running", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodRunning && containerStatusOf(p, "sh").State.Running != nil
	})
	if id := containerStatusOf(p, "c").ContainerID; !strings.HasPrefix(id, "sim://") {
		t.Errorf("nginx container %q is not simulated", id)
	}
	if id := containerStatusOf(p, "sh").ContainerID; !strings.HasPrefix(id, "process://") {
		t.Errorf("busybox container %q is not a process", id)
	}
	if !hasEvent(auto.events, "Simulated") {
		t.Errorf("no Simulated event")
	}
}

// TestSecurityContext: runAsNonRoot on a container that would run as root
// is refused as the kubelet refuses it; capabilities.drop ALL and
// allowPrivilegeEscalation: false are applied.
func TestSecurityContext(t *testing.T) {
	th := startHost(t, RuntimeProcess, "")
	th.addNode(NodeSpec{Name: "node-1"})
	yes, no := true, false
	th.createPod(shellPod("nonroot", "id -u", v1.RestartPolicyNever, func(p *v1.Pod) {
		p.Spec.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes}
	}))
	th.createPod(shellPod("nonroot-ok", "id -u", v1.RestartPolicyNever, func(p *v1.Pod) {
		uid := int64(65534)
		p.Spec.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid}
	}))
	th.createPod(shellPod("nocaps", "grep -E 'CapEff|NoNewPrivs' /proc/self/status", v1.RestartPolicyNever, func(p *v1.Pod) {
		p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{AllowPrivilegeEscalation: &no,
			Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}}}
	}))
	if th.h.imageUser("process", runtime.ImageConfig{}) == "0" {
		p := th.waitPod("nonroot", "CreateContainerConfigError", func(p *v1.Pod) bool {
			w := containerStatusOf(p, "c").State.Waiting
			return w != nil && w.Reason == "CreateContainerConfigError"
		})
		want := `container has runAsNonRoot and image will run as root (pod: "nonroot_default(uid-nonroot)", container: c)`
		if msg := containerStatusOf(p, "c").State.Waiting.Message; msg != want {
			t.Errorf("message = %q, want %q", msg, want)
		}
	}
	th.waitPod("nonroot-ok", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/nonroot-ok/c"); os.Geteuid() == 0 && body != "65534\n" {
		t.Errorf("id -u = %q", body)
	}
	p := th.waitPod("nocaps", "finished", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed })
	body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/nocaps/c")
	if p.Status.Phase != v1.PodSucceeded || !strings.Contains(body, "CapEff:\t0000000000000000") || !strings.Contains(body, "NoNewPrivs:\t1") {
		t.Errorf("phase %s, status:\n%s", p.Status.Phase, body)
	}
}

// TestSubPathStaysInVolume: a subPath that is a link out of its volume is
// refused; one inside is mounted.
func TestSubPathStaysInVolume(t *testing.T) {
	vol := t.TempDir()
	if err := os.Symlink("/etc", vol+"/etcl"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(vol+"/inside", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vol+"/inside/f", []byte("in the volume\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	th := startHost(t, RuntimeProcess, "")
	th.addNode(NodeSpec{Name: "node-1"})
	withSub := func(sub string) podOpt {
		return func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "v", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: vol}}}}
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "v", MountPath: "/sub", SubPath: sub}}
		}
	}
	th.createPod(shellPod("escape", "ls /sub", v1.RestartPolicyNever, withSub("etcl")))
	th.createPod(shellPod("inside", "cat /sub/f", v1.RestartPolicyNever, withSub("inside")))
	p := th.waitPod("escape", "CreateContainerConfigError", func(p *v1.Pod) bool {
		w := containerStatusOf(p, "c").State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.Contains(msg, "leads out of its volume") {
		t.Errorf("message = %q", msg)
	}
	p = th.waitPod("inside", "finished", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed })
	if th.h.isolated {
		if body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/inside/c"); p.Status.Phase != v1.PodSucceeded || body != "in the volume\n" {
			t.Errorf("phase %s, logs %q, status %+v", p.Status.Phase, body, containerStatusOf(p, "c"))
		}
	}
}

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
	"quartet.dev/quartet/test/imagetest"
)

// TestOCIImages runs pods from real images through the binary, with the
// default --runtime auto, against a registry on a loopback port serving a
// test-built image: a StatefulSet of HTTP servers writing to their claims
// and serving them (reached with kubectl exec into the image's container,
// and still there after the pod is replaced), Jobs exiting 0 and 3, a
// missing tag ending in ImagePullBackOff, a private registry reached with
// a service account's pull secret (and refused without), a memory limit
// (OOMKilled), readOnlyRootFilesystem, an image loaded with `quartet
// image load` run with imagePullPolicy: Never, kubectl logs, the kubelet's
// events, status.imageID and Node status.images; after a kill -9 and a
// restart the servers run again, and nothing (process, overlay mount) is
// left after quartet stops.
func TestOCIImages(t *testing.T) {
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	reg := imagetest.NewRegistry(nil)
	defer reg.Close()
	app, err := imagetest.AppImage(imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	image, err := reg.Push("app:1", app)
	if err != nil {
		t.Fatal(err)
	}
	// A private registry: credentials asked for once the image is pushed.
	var locked atomic.Bool
	private := imagetest.NewRegistry(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); locked.Load() && (!ok || u != "puller" || p != "s3cret") {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	defer private.Close()
	privateImage, err := private.Push("secret-app:1", app)
	if err != nil {
		t.Fatal(err)
	}
	locked.Store(true)
	dockerConfig, _ := json.Marshal(map[string]any{"auths": map[string]any{private.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("puller:s3cret"))}}})
	saved := filepath.Join(t.TempDir(), "saved.tar")
	tag, _ := name.NewTag("example.com/loaded:1")
	if err := tarball.WriteToFile(saved, tag, app); err != nil {
		t.Fatal(err)
	}

	c := start(t, cluster.Options{Args: []string{"--nodes=1"}})
	if out, err := c.Quartet(ctx, "image", "--data-dir", c.DataDir, "load", saved); err != nil || !strings.HasPrefix(out, "example.com/loaded:1\tsha256:") {
		t.Fatalf("image load: %q %v", out, err)
	}
	kubectl(t, c, fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: server
        image: %[1]s
        args: ["serve", "0", "/data"]
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: ["ReadWriteOnce"]
      resources: {requests: {storage: 1Mi}}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ok
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: %[1]s, args: ["exit", "0"]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: three
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: %[1]s, args: ["exit", "3"]}
---
apiVersion: v1
kind: Pod
metadata:
  name: missing
spec:
  containers:
  - {name: c, image: %[2]s/app:nope}
---
apiVersion: v1
kind: Pod
metadata:
  name: loaded
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: example.com/loaded:1, imagePullPolicy: Never, args: ["exit", "0"]}
---
apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: %[1]s
    args: ["hog", "200"]
    resources: {limits: {memory: 32Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: readonly
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: %[1]s
    args: ["write", "/data/x"]
    securityContext: {readOnlyRootFilesystem: true}
---
apiVersion: v1
kind: Secret
metadata:
  name: regcred
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: %[3]s
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: puller
imagePullSecrets:
- name: regcred
---
apiVersion: v1
kind: Pod
metadata:
  name: private-nocreds
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: %[4]s, imagePullPolicy: Always, args: ["exit", "0"]}
`, image, reg.Host, base64.StdEncoding.EncodeToString(dockerConfig), privateImage), "apply", "-f", "-")
	// After the secret and service account exist (the API server copies
	// the service account's pull secrets into the pod).
	kubectl(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: private
spec:
  restartPolicy: Never
  serviceAccountName: puller
  containers:
  - {name: c, image: %s, args: ["exit", "0"]}
`, privateImage), "apply", "-f", "-")

	port := regexp.MustCompile(`serving /data on port (\d+)`)
	serve := func(pod string) string {
		var p string
		waitFor(t, ctx, pod+" serving", func() (bool, string) {
			out, _ := c.Kubectl(ctx, "", "logs", pod)
			m := port.FindStringSubmatch(out)
			if m != nil {
				p = m[1]
			}
			return m != nil, out
		})
		return p
	}
	get := func(pod, port string) string {
		return kubectl(t, c, "", "exec", pod, "--", "/app", "get", "http://127.0.0.1:"+port+"/hello")
	}
	for _, pod := range []string{"web-0", "web-1"} {
		port := serve(pod)
		if got := get(pod, port); got != "hello from "+pod+"\n" {
			t.Errorf("%s serves %q inside", pod, got)
		}
		// And from the host, through the pod's IP and port (the host's
		// loopback while pods share the host's network, as `quartet up`'s
		// do until the pod network is wired in).
		ip := kubectl(t, c, "", "get", "pod", pod, "-o", "jsonpath={.status.podIP}")
		hc := http.Client{Timeout: 5 * time.Second}
		resp, err := hc.Get("http://" + net.JoinHostPort(ip, port) + "/hello")
		if err != nil {
			ip = "127.0.0.1"
			if resp, err = hc.Get("http://" + net.JoinHostPort(ip, port) + "/hello"); err != nil {
				t.Fatal(err)
			}
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello from "+pod+"\n" {
			t.Errorf("%s serves %q to the host at %s:%s", pod, body, ip, port)
		}
	}
	p, err := getPod(ctx, c, "web-0")
	if err != nil {
		t.Fatal(err)
	}
	cs := p.Status.ContainerStatuses[0]
	if !strings.HasPrefix(cs.ContainerID, "oci://") || cs.Image != image || !strings.HasPrefix(cs.ImageID, reg.Host+"/app@sha256:") {
		t.Errorf("web-0's container status: id %q image %q imageID %q", cs.ContainerID, cs.Image, cs.ImageID)
	}
	events := kubectl(t, c, "", "get", "events", "-o", "custom-columns=OBJ:.involvedObject.name,REASON:.reason,MSG:.message", "--no-headers")
	for _, want := range []string{"Pulling image \"" + image + "\"", "Successfully pulled image \"" + image + "\" in "} {
		if !strings.Contains(events, want) {
			t.Errorf("no event %q in:\n%s", want, events)
		}
	}

	// A replaced pod finds what it wrote in its claim.
	kubectl(t, c, "", "delete", "pod", "web-0", "--wait=true")
	if got := get("web-0", serve("web-0")); got != "hello from web-0\n" {
		t.Errorf("web-0 after its replacement serves %q", got)
	}

	jobCondition := func(job, cond string) {
		waitFor(t, ctx, "job "+job+" "+cond, func() (bool, string) {
			out, _ := c.Kubectl(ctx, "", "get", "job", job, "-o", "jsonpath={range .status.conditions[*]}{.type}={.status} {end}")
			return strings.Contains(out, cond+"=True"), out
		})
	}
	jobCondition("ok", "Complete")
	jobCondition("three", "Failed")
	out := kubectl(t, c, "", "get", "job", "three", "-o", "jsonpath={.status.failed}")
	if out != "2" {
		t.Errorf("job three: %s failed pods, want 2 (backoffLimit 1)", out)
	}
	out = kubectl(t, c, "", "logs", "job/ok")
	if out != "exiting with 0\n" {
		t.Errorf("logs of job ok: %q", out)
	}

	waitFor(t, ctx, "missing in ImagePullBackOff", func() (bool, string) {
		p, err := getPod(ctx, c, "missing")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ImagePullBackOff" && strings.Contains(w.Message, "MANIFEST_UNKNOWN"), fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
	})
	waitFor(t, ctx, "loaded Succeeded", func() (bool, string) {
		p, err := getPod(ctx, c, "loaded")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodSucceeded && strings.HasPrefix(p.Status.ContainerStatuses[0].ContainerID, "oci://"), fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	events = kubectl(t, c, "", "get", "events", "--field-selector", "involvedObject.name=loaded", "-o", "jsonpath={.items[*].message}")
	if !strings.Contains(events, `Container image "example.com/loaded:1" already present on machine`) {
		t.Errorf("loaded's events: %s", events)
	}

	terminated := func(pod string, want func(*corev1.ContainerStateTerminated) bool) {
		waitFor(t, ctx, pod+" terminated", func() (bool, string) {
			p, err := getPod(ctx, c, pod)
			if err != nil || len(p.Status.ContainerStatuses) != 1 {
				return false, fmt.Sprint(err)
			}
			term := p.Status.ContainerStatuses[0].State.Terminated
			return term != nil && want(term), fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
		})
	}
	terminated("hog", func(term *corev1.ContainerStateTerminated) bool {
		return term.Reason == "OOMKilled" && term.ExitCode == 137
	})
	terminated("readonly", func(term *corev1.ContainerStateTerminated) bool { return term.ExitCode == 1 })
	if out := kubectl(t, c, "", "logs", "readonly"); !strings.Contains(out, "read-only file system") {
		t.Errorf("readonly's write: %q", out)
	}
	terminated("private", func(term *corev1.ContainerStateTerminated) bool { return term.ExitCode == 0 })
	waitFor(t, ctx, "private-nocreds in ErrImagePull", func() (bool, string) {
		p, err := getPod(ctx, c, "private-nocreds")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && strings.Contains(w.Message, "UNAUTHORIZED"), fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
	})

	waitFor(t, ctx, "the image in Node status.images", func() (bool, string) {
		out, _ := c.Kubectl(ctx, "", "get", "node", "node-1", "-o", "json")
		var n corev1.Node
		if err := json.Unmarshal([]byte(out), &n); err != nil {
			return false, err.Error()
		}
		for _, im := range n.Status.Images {
			for _, nm := range im.Names {
				if nm == image {
					return true, ""
				}
			}
		}
		return false, fmt.Sprint(n.Status.Images)
	})

	// kill -9: the containers die with quartet; the restart unmounts what
	// was left mounted and runs the servers again from the image.
	if m := mountsUnder(c.DataDir); len(m) < 2 {
		t.Errorf("the web pods' root filesystems are not mounts under the data dir: %v", m)
	}
	oldID := kubectl(t, c, "", "get", "pod", "web-1", "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.ExitErr()
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "web-1 running again", func() (bool, string) {
		out, _ := c.Kubectl(ctx, "", "get", "pod", "web-1", "-o", "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running}")
		return !strings.HasPrefix(out, oldID) && strings.Contains(out, "startedAt"), out
	})
	if got := get("web-1", serve("web-1")); got != "hello from web-1\n" {
		t.Errorf("web-1 after the restart serves %q", got)
	}
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if pids := cgroupProcs(c.DataDir); len(pids) > 0 {
		t.Errorf("processes left in the containers' cgroups: %v", pids)
	}
	if m := mountsUnder(c.DataDir); len(m) > 0 {
		t.Errorf("mounts left under the data dir: %v", m)
	}
}

// mountsUnder lists this machine's mount points under dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

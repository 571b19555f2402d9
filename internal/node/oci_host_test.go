package node

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"quartet.dev/quartet/test/imagetest"
)

// ociRegistry serves the test images: app:1 (the app as entrypoint, user
// "app", env and working dir of its own), root:1 (the app, as root).
func ociRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *imagetest.Registry {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the oci runtime needs root")
	}
	reg := imagetest.NewRegistry(wrap)
	t.Cleanup(reg.Close)
	app, err := imagetest.AppImage(imagetest.Options{User: "app", Env: []string{"FROM_IMAGE=yes", "SHADOWED=image"}, WorkingDir: "/home/app", Cmd: []string{"env"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("app:1", app); err != nil {
		t.Fatal(err)
	}
	root, err := imagetest.AppImage(imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("root:1", root); err != nil {
		t.Fatal(err)
	}
	return reg
}

func imagePod(name, image string, restart v1.RestartPolicy, args ...string) *v1.Pod {
	return boundPod(name, withRestart(restart), func(p *v1.Pod) {
		p.Spec.Containers[0].Image = image
		p.Spec.Containers[0].Args = args
	})
}

func waitingReasonOf(p *v1.Pod) string {
	if w := containerStatusOf(p, "c").State.Waiting; w != nil {
		return w.Reason
	}
	return ""
}

// TestOCIRunsImages: images pulled from a registry run as containers,
// with the image config merged as the kubelet merges it, the kubelet's
// image events and statuses, its pull back-off, and runAsNonRoot,
// readOnlyRootFilesystem and InvalidImageName.
func TestOCIRunsImages(t *testing.T) {
	reg := ociRegistry(t, nil)
	th := startHost(t, RuntimeOCI, "")
	th.addNode(NodeSpec{Name: "node-1"})

	// The image's entrypoint with args replacing its cmd; exit code 3.
	th.createPod(imagePod("exit3", reg.Host+"/root:1", v1.RestartPolicyNever, "exit", "3"))
	p := th.waitPod("exit3", "Failed", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	cs := containerStatusOf(p, "c")
	if term := cs.State.Terminated; term == nil || term.ExitCode != 3 || !strings.HasPrefix(cs.ContainerID, "oci://") ||
		!strings.HasPrefix(cs.ImageID, reg.Host+"/root@sha256:") || cs.Image != reg.Host+"/root:1" {
		t.Fatalf("status = %+v", cs)
	}
	if body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/exit3/c"); body != "exiting with 3\n" {
		t.Errorf("logs = %q", body)
	}
	for _, want := range []string{`Pulling image "` + reg.Host + `/root:1"`, `Successfully pulled image "` + reg.Host + `/root:1" in `, "Image size: "} {
		if !th.sawEvent(want) {
			t.Errorf("no event %q in %q", want, th.seenEvents())
		}
	}

	// The image's cmd, env, user (by name, with its groups) and working
	// dir; the container's env over the image's.
	envPod := imagePod("env", reg.Host+"/app:1", v1.RestartPolicyNever)
	envPod.Spec.Containers[0].Env = []v1.EnvVar{{Name: "SHADOWED", Value: "pod"}}
	th.createPod(envPod)
	th.waitPod("env", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/env/c")
	for _, want := range []string{"FROM_IMAGE=yes\n", "SHADOWED=pod\n", "HOSTNAME=env\n", "HOME=/home/app\n", "PATH=/usr/local/bin:/usr/bin:/bin\n", "uid=1000 gid=1000 groups=[2000] wd=/home/app\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("env output lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "quartet") {
		t.Errorf("the container sees the host's data dir:\n%s", body)
	}

	// A second pod of the same image: already present (IfNotPresent).
	th.createPod(imagePod("again", reg.Host+"/root:1", v1.RestartPolicyNever, "exit", "0"))
	th.waitPod("again", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if !th.sawEvent(`Container image "` + reg.Host + `/root:1" already present on machine`) {
		t.Errorf("no already-present event in %q", th.seenEvents())
	}

	// runAsNonRoot and an image whose user is a name.
	yes := true
	nonroot := imagePod("nonroot", reg.Host+"/app:1", v1.RestartPolicyNever)
	nonroot.Spec.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes}
	th.createPod(nonroot)
	p = th.waitPod("nonroot", "CreateContainerConfigError", func(p *v1.Pod) bool { return waitingReasonOf(p) == "CreateContainerConfigError" })
	if msg := containerStatusOf(p, "c").State.Waiting.Message; msg != `container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: "nonroot_default(uid-nonroot)", container: c)` {
		t.Errorf("message = %q", msg)
	}

	// readOnlyRootFilesystem refuses a write.
	ro := imagePod("ro", reg.Host+"/root:1", v1.RestartPolicyNever, "write", "/data/x")
	ro.Spec.Containers[0].SecurityContext = &v1.SecurityContext{ReadOnlyRootFilesystem: &yes}
	th.createPod(ro)
	th.waitPod("ro", "Failed", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if body, _ := getLogs(th.h.agents["node-1"], "/containerLogs/default/ro/c"); !strings.Contains(body, "read-only file system") {
		t.Errorf("write under readOnlyRootFilesystem: %q", body)
	}

	// A tag that is not there: ErrImagePull, then ImagePullBackOff, and a
	// pull again once the back-off (10 s) has passed.
	th.createPod(imagePod("missing", reg.Host+"/root:nope", v1.RestartPolicyAlways))
	p = th.waitPod("missing", "ErrImagePull", func(p *v1.Pod) bool { return waitingReasonOf(p) == "ErrImagePull" })
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.Contains(msg, `failed to pull and unpack image "`+reg.Host+`/root:nope"`) || !strings.Contains(msg, "MANIFEST_UNKNOWN") {
		t.Errorf("ErrImagePull message = %q", msg)
	}
	th.step(3 * time.Second)
	p = th.waitPod("missing", "ImagePullBackOff", func(p *v1.Pod) bool { return waitingReasonOf(p) == "ImagePullBackOff" })
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.HasPrefix(msg, `Back-off pulling image "`+reg.Host+`/root:nope": ErrImagePull: failed to pull`) {
		t.Errorf("ImagePullBackOff message = %q", msg)
	}
	if !th.sawEvent(`Back-off pulling image "` + reg.Host + `/root:nope"`) {
		t.Errorf("no back-off event in %q", th.seenEvents())
	}
	pulls := strings.Count(strings.Join(th.seenEvents(), "\n"), `Pulling image "`+reg.Host+`/root:nope"`)
	th.step(8 * time.Second)
	eventually(t, "a second pull after the back-off", func() (bool, string) {
		n := strings.Count(strings.Join(th.seenEvents(), "\n"), `Pulling image "`+reg.Host+`/root:nope"`)
		return n > pulls, strings.Join(th.seenEvents(), "\n")
	})

	// A reference that does not parse.
	th.createPod(imagePod("badref", "Bad/Ref:x:y", v1.RestartPolicyAlways))
	p = th.waitPod("badref", "InvalidImageName", func(p *v1.Pod) bool { return waitingReasonOf(p) == "InvalidImageName" })
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.HasPrefix(msg, `Failed to apply default image tag "Bad/Ref:x:y"`) {
		t.Errorf("InvalidImageName message = %q", msg)
	}
}

// TestOCIPullSecrets: a registry that wants credentials gets them from the
// pod's image pull secret; without, the pull fails with the registry's
// 401; a secret that cannot be read is reported and the pull goes on.
// (A service account's pull secrets reach the pod through the API server:
// e2e TestOCIPrivateRegistry.)
func TestOCIPullSecrets(t *testing.T) {
	// Credentials are asked for once the images are pushed.
	var locked atomic.Bool
	reg := ociRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); locked.Load() && (!ok || u != "puller" || p != "s3cret") {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	locked.Store(true)
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("puller:s3cret"))}}})
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "default"}, Type: v1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{v1.DockerConfigJsonKey: cfg}}
	client := fake.NewClientset(secret, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-1-uid"}, Spec: v1.NodeSpec{PodCIDR: "10.244.1.0/24"}})
	th := startHostWith(t, RuntimeOCI, t.TempDir(), client)
	th.addNode(NodeSpec{Name: "node-1"})

	th.createPod(imagePod("nocreds", reg.Host+"/root:1", v1.RestartPolicyNever, "exit", "0"))
	p := th.waitPod("nocreds", "ErrImagePull", func(p *v1.Pod) bool { return waitingReasonOf(p) == "ErrImagePull" })
	if msg := containerStatusOf(p, "c").State.Waiting.Message; !strings.Contains(msg, "UNAUTHORIZED") {
		t.Errorf("message = %q", msg)
	}
	withSecret := imagePod("secret", reg.Host+"/root:1", v1.RestartPolicyNever, "exit", "0")
	withSecret.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "regcred"}}
	th.createPod(withSecret)
	th.waitPod("secret", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	missing := imagePod("missingsecret", reg.Host+"/root:1", v1.RestartPolicyNever, "exit", "0")
	missing.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "nope"}}
	th.createPod(missing)
	th.waitPod("missingsecret", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if !th.sawEvent("Unable to retrieve some image pull secrets (nope)") {
		t.Errorf("no FailedToRetrieveImagePullSecret event in %q", th.seenEvents())
	}
}

// TestAutoFallsBackVisibly: under --runtime auto, an image no registry
// can serve (the name does not resolve) runs as before (the image map,
// the process runtime, simulation), with a RuntimeFallback warning.
func TestAutoFallsBackVisibly(t *testing.T) {
	reg := ociRegistry(t, nil)
	th := startHost(t, RuntimeAuto, "")
	th.addNode(NodeSpec{Name: "node-1"})
	th.createPod(imagePod("offline", "registry.invalid/nginx:1.27", v1.RestartPolicyAlways))
	th.createPod(imagePod("online", reg.Host+"/root:1", v1.RestartPolicyNever, "exit", "0"))
	p := th.waitPod("offline", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	if id := containerStatusOf(p, "c").ContainerID; !strings.HasPrefix(id, "sim://") {
		t.Errorf("container %q is not simulated", id)
	}
	eventually(t, "a RuntimeFallback event", func() (bool, string) {
		return th.sawEvent(`RuntimeFallback Not running image "registry.invalid/nginx:1.27": no registry could be reached`), strings.Join(th.seenEvents(), "\n")
	})
	p = th.waitPod("online", "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if id := containerStatusOf(p, "c").ContainerID; !strings.HasPrefix(id, "oci://") {
		t.Errorf("container %q does not run its image", id)
	}
}

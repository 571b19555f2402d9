package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
	"quartet.dev/quartet/test/imagetest"
)

// TestOCIBadInput gives the oci runtime bad input through the binary, on a
// one-node cluster whose image store lies on a small filesystem of its own
// (a 64 MiB tmpfs mounted on <data-dir>/images), while a pod of a good image
// keeps running:
//   - a reference that does not parse: InvalidImageName;
//   - a registry serving a layer whose content does not match its digest:
//     ErrImagePull → ImagePullBackOff naming the mismatch, the layer never
//     in the store;
//   - an image whose entrypoint does not exist: terminated with StartError
//     (exit 128) naming the executable, CrashLoopBackOff when it restarts;
//   - the store's filesystem filling during a pull: ErrImagePull naming
//     "no space left on device", nothing of the layer kept, and the pull
//     succeeding (the pod running) once space is freed;
//   - quartet killed (-9) while a layer is being fetched (the registry
//     holds the blob's second half back): the restart removes the half
//     unpacked layer, pulls again and runs the pod from the whole layer.
//
// Nothing is left mounted or running after quartet stops.
func TestOCIBadInput(t *testing.T) {
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	app, err := imagetest.AppImage(imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	noEntry, err := imagetest.AppImage(imagetest.Options{Entrypoint: []string{"/nope"}})
	if err != nil {
		t.Fatal(err)
	}
	corrupt, corruptLayer := layeredImage(t, map[string]imagetest.File{"corrupt": {Body: []byte("as pushed\n")}})
	// Random bytes do not compress: the layer takes its size on disk.
	fill, fillLayer := layeredImage(t, map[string]imagetest.File{"fill": {Body: randomBytes(t, 8<<20)}})
	slow, slowLayer := layeredImage(t, map[string]imagetest.File{
		"big":    {Body: randomBytes(t, 4<<20)},
		"zz-end": {Body: []byte("the whole layer\n")}, // after big in the tar
	})
	corruptDigest := digestOf(t, corruptLayer)
	slowDigest := digestOf(t, slowLayer)
	slowBlob := compressedOf(t, slowLayer)
	// The corrupt layer's blob as served: one byte of its gzip header (the
	// modification time) changed, so it still unpacks to the same files,
	// of the same size, but does not match its digest.
	badBlob := compressedOf(t, corruptLayer)
	badBlob[4] ^= 0xff

	slowStarted := make(chan struct{})
	slowRelease := make(chan struct{})
	var startedOnce, releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(slowRelease) }) }
	defer release()
	reg := imagetest.NewRegistry(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
				h.ServeHTTP(w, r)
				return
			}
			switch {
			case strings.HasSuffix(r.URL.Path, corruptDigest.String()):
				_, _ = w.Write(badBlob)
			case strings.HasSuffix(r.URL.Path, slowDigest.String()):
				select {
				case <-slowRelease:
					_, _ = w.Write(slowBlob)
					return
				default:
				}
				// Half the blob, then nothing until released (or the
				// client is gone).
				w.Header().Set("Content-Length", fmt.Sprint(len(slowBlob)))
				_, _ = w.Write(slowBlob[:len(slowBlob)/2])
				w.(http.Flusher).Flush()
				startedOnce.Do(func() { close(slowStarted) })
				select {
				case <-slowRelease:
					_, _ = w.Write(slowBlob[len(slowBlob)/2:])
				case <-r.Context().Done():
				}
			default:
				h.ServeHTTP(w, r)
			}
		})
	})
	defer reg.Close()
	push := func(repoTag string, img ggcrv1.Image) string {
		ref, err := reg.Push(repoTag, img)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	appRef, noEntryRef, corruptRef := push("app:1", app), push("noentry:1", noEntry), push("corrupt:1", corrupt)
	fillRef, slowRef := push("fill:1", fill), push("slow:1", slow)

	// The data dir, its image store on a tmpfs of its own (unmounted once
	// the cluster has stopped: cleanups run last registered first).
	dir, err := os.MkdirTemp("", "quartet-test-")
	if err != nil {
		t.Fatal(err)
	}
	store := datadir.Dir(dir).ImageStore()
	if err := os.Mkdir(store, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", store, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=64m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs for the image store: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(store, 0); err != nil {
			t.Errorf("unmounting the image store's tmpfs: %v", err)
			_ = syscall.Unmount(store, syscall.MNT_DETACH)
		}
		os.RemoveAll(dir)
	})
	c := start(t, cluster.Options{DataDir: dir, Args: []string{"--nodes=1", "--runtime=oci"}})

	pod := func(name, image, restart string, args ...string) string {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = fmt.Sprintf("%q", a)
		}
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: %s, args: [%s]}
---
`, name, restart, image, strings.Join(q, ", "))
	}
	state := func(name string) (corev1.ContainerStatus, string) {
		p, err := getPod(ctx, c, name)
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return corev1.ContainerStatus{}, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		return cs, fmt.Sprintf("%s state %+v last %+v", p.Status.Phase, cs.State, cs.LastTerminationState)
	}
	// ErrImagePull, or ImagePullBackOff once a sync saw it backing off.
	waitPulling := func(name, want string) {
		waitFor(t, ctx, name+" failing to pull", func() (bool, string) {
			cs, seen := state(name)
			w := cs.State.Waiting
			return w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && strings.Contains(w.Message, want), seen
		})
	}
	// No temporary layer left, and every layer in the store complete.
	storeClean := func(when string, absent ...ggcrv1.Layer) {
		t.Helper()
		if left, _ := os.ReadDir(filepath.Join(store, "tmp")); len(left) > 0 {
			t.Errorf("%s: left in the store's tmp: %v", when, left)
		}
		for _, l := range absent {
			diffID := diffIDOf(t, l)
			if _, err := os.Stat(filepath.Join(store, "layers", strings.ReplaceAll(diffID, ":", "-"))); err == nil {
				t.Errorf("%s: layer %s is in the store", when, diffID)
			}
		}
	}

	kubectl(t, c, pod("steady", appRef, "Always", "sleep"), "apply", "-f", "-")
	waitFor(t, ctx, "steady running", func() (bool, string) {
		cs, seen := state("steady")
		return cs.State.Running != nil, seen
	})
	steadyID, _ := state("steady")

	// A corrupt layer and an entrypoint that does not exist.
	kubectl(t, c, pod("corrupt", corruptRef, "Never", "cat", "/corrupt")+
		pod("noentry", noEntryRef, "Never")+
		pod("noentry-always", noEntryRef, "Always")+
		pod("badref", reg.Host+"/App::1", "Never"), "apply", "-f", "-")
	waitFor(t, ctx, "badref in InvalidImageName", func() (bool, string) {
		cs, seen := state("badref")
		w := cs.State.Waiting
		return w != nil && w.Reason == "InvalidImageName" && strings.Contains(w.Message, "invalid reference format"), seen
	})
	waitPulling("corrupt", "checksum")
	waitFor(t, ctx, "corrupt in ImagePullBackOff", func() (bool, string) {
		cs, seen := state("corrupt")
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == "ImagePullBackOff", seen
	})
	cs, _ := state("corrupt")
	t.Logf("corrupt layer: %s", cs.State.Waiting.Message)
	storeClean("after the corrupt layer", corruptLayer)
	// Gone, so that none of its retries is under way when the store is
	// checked again.
	kubectl(t, c, "", "delete", "pod", "corrupt", "--wait=true")
	waitFor(t, ctx, "noentry terminated with StartError", func() (bool, string) {
		cs, seen := state("noentry")
		term := cs.State.Terminated
		return term != nil && term.Reason == "StartError" && term.ExitCode == 128 && strings.Contains(term.Message, `"/nope"`), seen
	})
	cs, _ = state("noentry")
	t.Logf("missing entrypoint: %s", cs.State.Terminated.Message)
	if !strings.Contains(cs.State.Terminated.Message, "no such file or directory") {
		t.Errorf("noentry's message does not say the file is missing: %q", cs.State.Terminated.Message)
	}
	waitFor(t, ctx, "noentry-always in CrashLoopBackOff after a StartError", func() (bool, string) {
		cs, seen := state("noentry-always")
		w, last := cs.State.Waiting, cs.LastTerminationState.Terminated
		return w != nil && w.Reason == "CrashLoopBackOff" && last != nil && last.Reason == "StartError", seen
	})

	// The store's filesystem fills during a pull.
	var st syscall.Statfs_t
	if err := syscall.Statfs(store, &st); err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(store, "ballast")
	if err := os.WriteFile(ballast, make([]byte, int64(st.Bavail)*st.Bsize-(2<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, c, pod("fill", fillRef, "Never", "exit", "0"), "apply", "-f", "-")
	waitPulling("fill", "no space left on device")
	cs, _ = state("fill")
	t.Logf("disk full: %s", cs.State.Waiting.Message)
	storeClean("after the disk filled", fillLayer)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "fill Succeeded once space is freed", func() (bool, string) {
		cs, seen := state("fill")
		return cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0, seen
	})
	if cs, seen := state("steady"); cs.State.Running == nil || cs.ContainerID != steadyID.ContainerID || cs.RestartCount != 0 {
		t.Errorf("steady did not keep running through the bad input: %s", seen)
	}

	// quartet killed while it fetches a layer.
	kubectl(t, c, pod("slow", slowRef, "Never", "cat", "/zz-end"), "apply", "-f", "-")
	select {
	case <-slowStarted:
	case <-ctx.Done():
		t.Fatal("the slow layer was never asked for")
	}
	var partial []string
	waitFor(t, ctx, "half the slow layer unpacked", func() (bool, string) {
		partial, _ = filepath.Glob(filepath.Join(store, "tmp", "*", "big"))
		return len(partial) == 1, fmt.Sprint(partial)
	})
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.ExitErr()
	if fi, err := os.Stat(partial[0]); err != nil || fi.Size() >= 4<<20 {
		t.Fatalf("the kill did not catch the pull mid-layer: %v %v", fi, err)
	}
	release()
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "slow Succeeded from the whole layer", func() (bool, string) {
		cs, seen := state("slow")
		return cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0, seen
	})
	if out := kubectl(t, c, "", "logs", "slow"); out != "the whole layer\n" {
		t.Errorf("slow's logs: %q", out)
	}
	storeClean("after the restart")
	waitFor(t, ctx, "steady running again after the restart", func() (bool, string) {
		cs, seen := state("steady")
		return cs.State.Running != nil && cs.ContainerID != steadyID.ContainerID, seen
	})

	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if pids := cgroupProcs(dir); len(pids) > 0 {
		t.Errorf("processes left in the containers' cgroups: %v", pids)
	}
	for _, m := range mountsUnder(dir) {
		if m != store {
			t.Errorf("mount left under the data dir: %s", m)
		}
	}
}

// layeredImage is the app image with one more layer holding files; it
// returns the image and that layer.
func layeredImage(t *testing.T, files map[string]imagetest.File) (ggcrv1.Image, ggcrv1.Layer) {
	t.Helper()
	img, err := imagetest.AppImage(imagetest.Options{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return img, layers[len(layers)-1]
}

func digestOf(t *testing.T, l ggcrv1.Layer) ggcrv1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func diffIDOf(t *testing.T, l ggcrv1.Layer) string {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func compressedOf(t *testing.T, l ggcrv1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

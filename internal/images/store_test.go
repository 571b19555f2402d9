package images

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

type entry struct {
	name, body, link string
	dir              bool
}

func layer(t *testing.T, entries ...entry) ggcrv1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, layers ...ggcrv1.Layer) ggcrv1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", Platform().Architecture
	cf.Config.Entrypoint = []string{"/bin/app"}
	cf.Config.Env = []string{"PATH=/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img ggcrv1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestPullUnpacksLayersOnceWithWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts need root")
	}
	reg := serve(t)
	base := layer(t, entry{name: "etc/", dir: true}, entry{name: "etc/gone", body: "x"}, entry{name: "data/", dir: true},
		entry{name: "data/old", body: "old"}, entry{name: "bin/", dir: true}, entry{name: "bin/app", body: "app"})
	top := layer(t, entry{name: "etc/.wh.gone"}, entry{name: "data/", dir: true}, entry{name: "data/.wh..wh..opq"}, entry{name: "data/new", body: "new"})
	push(t, reg+"/app:1", image(t, base, top))

	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	im, err := s.Pull(context.Background(), reg+"/app:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Layers) != 2 || im.Entrypoint[0] != "/bin/app" || im.Size == 0 || !strings.HasPrefix(im.RepoDigest(), reg+"/app@sha256:") {
		t.Fatalf("image = %+v", im)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.LayerDir(im.Layers[1]), "etc", "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout of etc/gone: %v mode %o", err, st.Mode)
	}
	buf := make([]byte, 1)
	if n, err := unix.Getxattr(filepath.Join(s.LayerDir(im.Layers[1]), "data"), "trusted.overlay.opaque", buf); err != nil || n != 1 || buf[0] != 'y' {
		t.Errorf("opaque data/: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.LayerDir(im.Layers[0]), "bin", "app")); err != nil || string(b) != "app" {
		t.Errorf("bin/app = %q %v", b, err)
	}

	// A second image sharing the base layer fetches only its own.
	push(t, reg+"/other:1", image(t, base))
	before, _ := os.Stat(s.LayerDir(im.Layers[0]))
	if _, err := s.Pull(context.Background(), reg+"/other:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(s.LayerDir(im.Layers[0]))
	if !os.SameFile(before, after) {
		t.Errorf("the shared layer was unpacked again")
	}
	list, _ := s.List()
	if len(list) != 2 {
		t.Fatalf("list = %+v", list)
	}
	// rm keeps the layer another image uses and refuses an image in use.
	if err := s.Remove(reg+"/app:1", func(string) bool { return true }); err == nil {
		t.Errorf("an image in use was removed")
	}
	if err := s.Remove(reg+"/app:1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.LayerDir(im.Layers[1])); !os.IsNotExist(err) {
		t.Errorf("the unused layer is still there: %v", err)
	}
	if _, err := os.Stat(s.LayerDir(im.Layers[0])); err != nil {
		t.Errorf("the shared layer is gone: %v", err)
	}
	if _, ok, _ := s.Get(reg + "/other:1"); !ok {
		t.Errorf("other:1 is gone")
	}
}

func TestPullErrors(t *testing.T) {
	reg := serve(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), reg+"/nothing:1", PullOptions{}); !IsNotFound(err) {
		t.Errorf("missing tag: %v", err)
	}
	if _, err := s.Pull(context.Background(), "Not A Ref", PullOptions{}); err == nil || !strings.Contains(err.Error(), "invalid image reference") {
		t.Errorf("bad reference: %v", err)
	}
	// A layer that escapes through a symbolic link is refused, and nothing
	// of it stays.
	evil := layer(t, entry{name: "etcl", link: "/etc"}, entry{name: "etcl/quartet-evil", body: "x"})
	push(t, reg+"/evil:1", image(t, evil))
	if _, err := s.Pull(context.Background(), reg+"/evil:1", PullOptions{}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("escaping layer: %v", err)
	}
	if _, err := os.Stat("/etc/quartet-evil"); err == nil {
		t.Fatalf("a layer wrote to the host")
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("list after failures = %+v", list)
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	tmp, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	if len(entries)+len(tmp) != 0 {
		t.Errorf("left behind: %v %v", entries, tmp)
	}
}

func TestLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking with ownership needs root")
	}
	tag, err := name.NewTag("example.com/saved:2")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "saved.tar")
	if err := tarball.WriteToFile(file, tag, image(t, layer(t, entry{name: "hello", body: "hi"}))); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ims, err := s.Load(file)
	if err != nil || len(ims) != 1 || ims[0].Ref != "example.com/saved:2" {
		t.Fatalf("Load = %+v, %v", ims, err)
	}
	if _, ok, _ := s.Get("example.com/saved:2"); !ok {
		t.Errorf("loaded image not found")
	}
	if _, err := s.Load(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Errorf("a missing file loaded")
	}
}

// Package imagetest makes the container images tests run, with nothing
// from outside the machine: a static binary the test compiles
// (CGO_ENABLED=0) in a layer of its own, served by go-containerregistry's
// in-memory registry on a loopback port.
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// AppPackage is the test program every test image runs (see app/).
const AppPackage = "quartet.dev/quartet/test/imagetest/app"

var (
	buildOnce sync.Once
	appBytes  []byte
	buildErr  error
)

// App compiles the test program once per process (CGO_ENABLED=0: a static
// binary) and returns it.
func App() ([]byte, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imagetest-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "app")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, AppPackage)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building %s: %v\n%s", AppPackage, err, b)
			return
		}
		appBytes, buildErr = os.ReadFile(out)
	})
	return appBytes, buildErr
}

// File is one file of a layer.
type File struct {
	Body []byte
	Mode int64 // 0: 0644
	Dir  bool
}

// Layer is a layer holding files (directories first, by path).
func Layer(files map[string]File) (ggcrv1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := files[p]
		h := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: f.Mode, Typeflag: tar.TypeReg, Size: int64(len(f.Body))}
		if h.Mode == 0 {
			h.Mode = 0o644
			if f.Dir {
				h.Mode = 0o755
			}
		}
		if f.Dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Size > 0 {
			if _, err := tw.Write(f.Body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// Options shape an app image.
type Options struct {
	// Entrypoint and Cmd (default: ["/app"] and none).
	Entrypoint, Cmd []string
	Env             []string
	User            string
	WorkingDir      string
	// Extra files, in a layer above the app's.
	Files map[string]File
}

// AppImage is an image whose /app is the test program, with /etc/passwd
// and /etc/group naming root and "app" (uid 1000, gid 1000, also in group
// 2000 "extra"), /tmp and /data.
func AppImage(opts Options) (ggcrv1.Image, error) {
	app, err := App()
	if err != nil {
		return nil, err
	}
	base, err := Layer(map[string]File{
		"app":        {Body: app, Mode: 0o755},
		"etc":        {Dir: true},
		"etc/passwd": {Body: []byte("root:x:0:0:root:/root:/app\napp:x:1000:1000:app:/home/app:/app\n")},
		"etc/group":  {Body: []byte("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")},
		"tmp":        {Dir: true, Mode: 0o1777},
		"data":       {Dir: true, Mode: 0o777},
		"home":       {Dir: true},
		"home/app":   {Dir: true},
		"root":       {Dir: true, Mode: 0o700},
	})
	if err != nil {
		return nil, err
	}
	layers := []ggcrv1.Layer{base}
	if len(opts.Files) > 0 {
		l, err := Layer(opts.Files)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Entrypoint = opts.Entrypoint
	if cf.Config.Entrypoint == nil {
		cf.Config.Entrypoint = []string{"/app"}
	}
	cf.Config.Cmd = opts.Cmd
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, opts.Env...)
	cf.Config.User = opts.User
	cf.Config.WorkingDir = opts.WorkingDir
	return mutate.ConfigFile(img, cf)
}

// Registry is an in-memory registry on a loopback port.
type Registry struct {
	// Host is its "127.0.0.1:PORT".
	Host string
	srv  *httptest.Server
}

// NewRegistry starts a registry; handler, if given, wraps it (e.g. to ask
// for credentials).
func NewRegistry(wrap func(h http.Handler) http.Handler) *Registry {
	h := http.Handler(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// Push pushes img as repo:tag ("app:1") and returns the full reference.
func (r *Registry) Push(repoTag string, img ggcrv1.Image) (string, error) {
	ref := r.Host + "/" + repoTag
	n, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	return ref, remote.Write(n, img)
}

// Command image writes the container image of quartet (`make image`): the
// quartet binary on a base of nothing but what it needs (its ELF
// interpreter and shared libraries when it is dynamically linked, a
// non-root user, /tmp), as an OCI image layout in a tar (oci-layout,
// index.json, blobs/sha256/...) that also carries `docker save`'s
// manifest.json, as `docker save` itself writes since Docker 25: `quartet
// image load`, `docker load`, `skopeo copy oci-archive:` and `crane push`
// accept it. No container daemon is involved: go-containerregistry
// assembles the image.
//
//	go run ./deploy/image -binary bin/quartet -tag quartet:v0.1.0-dev -o bin/quartet-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where the binary sits in the image, and the user it runs as (the
// Deployment's runAsUser, distroless's "nonroot").
const (
	binaryPath = "usr/local/bin/quartet"
	uid        = 65532
)

// libraryDirs are where the ELF interpreter looks for a binary's shared
// libraries on Debian-like and other distributions.
var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

func main() {
	binary := flag.String("binary", "bin/quartet", "the quartet binary to put in the image")
	tag := flag.String("tag", "quartet:dev", "the image's name and tag in the archive")
	out := flag.String("o", "bin/quartet-image.tar", "the image archive to write")
	flag.Parse()
	if err := run(*binary, *tag, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(binary, tag, out string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	img, err := build(binary)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := writeArchive(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s\t%s\t%s\n", out, ref, d)
	return nil
}

// file is one entry of the image's only layer.
type file struct {
	body []byte
	mode int64
	dir  bool
	link string // a symbolic link's target
	uid  int    // owner (and group); 0: root
}

// build assembles the image: one layer with the binary, the libraries it
// loads and a minimal /etc.
func build(binary string) (ggcrv1.Image, error) {
	body, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	files := map[string]file{
		binaryPath:                 {body: body, mode: 0o755},
		"etc/passwd":               {body: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)},
		"etc/group":                {body: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", uid)},
		"etc/nsswitch.conf":        {body: []byte("hosts: files dns\n")},
		"tmp":                      {dir: true, mode: 0o1777},
		"home/nonroot":             {dir: true, mode: 0o700, uid: uid},
		"root":                     {dir: true, mode: 0o700},
		"var/run/secrets":          {dir: true, mode: 0o755},
		"etc/ssl/certs":            {dir: true, mode: 0o755},
		"usr/local/bin":            {dir: true, mode: 0o755},
		"etc":                      {dir: true, mode: 0o755},
		"home":                     {dir: true, mode: 0o755},
		"var/run":                  {dir: true, mode: 0o755},
		"var":                      {dir: true, mode: 0o755},
		"usr/local":                {dir: true, mode: 0o755},
		"usr":                      {dir: true, mode: 0o755},
		"etc/ssl":                  {dir: true, mode: 0o755},
		"etc/ssl/certs/README.txt": {body: []byte("quartet's image carries no CA bundle: in a cluster it trusts the service account's ca.crt.\n")},
	}
	if err := addLibraries(binary, files); err != nil {
		return nil, err
	}
	layer, err := layerOf(files)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Entrypoint = []string{"/" + binaryPath}
	cf.Config.Cmd = []string{"--help"}
	cf.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/nonroot"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "quartet",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	return mutate.ConfigFile(img, cf)
}

// addLibraries adds a dynamically linked binary's ELF interpreter and the
// shared libraries it needs (and theirs), from this machine, under the
// paths the interpreter looks for them at. A static binary needs none.
func addLibraries(binary string, files map[string]file) error {
	f, err := elf.Open(binary)
	if err != nil {
		return fmt.Errorf("%s: not an ELF binary: %w", binary, err)
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return nil
	}
	if err := addHostFile(interp, files); err != nil {
		return err
	}
	seen := map[string]bool{}
	queue, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	for len(queue) > 0 {
		lib := queue[0]
		queue = queue[1:]
		if seen[lib] {
			continue
		}
		seen[lib] = true
		path, err := findLibrary(lib)
		if err != nil {
			return err
		}
		if err := addHostFile(path, files); err != nil {
			return err
		}
		lf, err := elf.Open(path)
		if err != nil {
			return err
		}
		more, err := lf.ImportedLibraries()
		lf.Close()
		if err != nil {
			return err
		}
		queue = append(queue, more...)
	}
	return nil
}

func findLibrary(lib string) (string, error) {
	for _, d := range libraryDirs {
		p := filepath.Join(d, lib)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("shared library %s: not found in %v", lib, libraryDirs)
}

// addHostFile copies a file of this machine into the image at the same
// path; symbolic links on the way are kept as links to the file's copy.
func addHostFile(path string, files map[string]file) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(real)
	if err != nil {
		return err
	}
	rel := strings.TrimPrefix(real, "/")
	files[rel] = file{body: body, mode: 0o755}
	addParents(rel, files)
	if real != path {
		lrel := strings.TrimPrefix(path, "/")
		if _, ok := files[lrel]; !ok {
			files[lrel] = file{link: real}
			addParents(lrel, files)
		}
	}
	return nil
}

func addParents(rel string, files map[string]file) {
	for d := filepath.Dir(rel); d != "." && d != "/"; d = filepath.Dir(d) {
		if _, ok := files[d]; !ok {
			files[d] = file{dir: true, mode: 0o755}
		}
	}
}

// layerOf is a layer of files, parents before children, owned by root.
func layerOf(files map[string]file) (ggcrv1.Layer, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := files[p]
		h := &tar.Header{Name: p, Mode: f.mode, Typeflag: tar.TypeReg, Size: int64(len(f.body)), Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Name, h.Typeflag, h.Size = p+"/", tar.TypeDir, 0
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, f.link, 0, 0o777
		case h.Mode == 0:
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Size > 0 {
			if _, err := tw.Write(f.body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if len(b) == 0 {
		return nil, errors.New("empty layer")
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// writeArchive writes img as an OCI image layout in a tar at out: the
// oci-layout marker, index.json naming the image's manifest (annotated with
// ref, as `docker save` does), and every blob under blobs/sha256/. A
// manifest.json lists the same config and layer blobs in `docker save`'s
// format, so that tools that read only that format load it too.
func writeArchive(out string, ref name.Tag, img ggcrv1.Image) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	entry := func(name string, size int64, body io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	}
	small := func(name string, b []byte) error { return entry(name, int64(len(b)), bytes.NewReader(b)) }
	blob := func(h ggcrv1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

	if err := small("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	if err := small(blob(configName), config); err != nil {
		return err
	}
	layerNames, err := writeLayers(img, entry, blob)
	if err != nil {
		return err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if err := small(blob(digest), manifest); err != nil {
		return err
	}
	index, err := json.Marshal(ggcrv1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []ggcrv1.Descriptor{{
			MediaType: types.OCIManifestSchema1, Size: int64(len(manifest)), Digest: digest,
			Annotations: map[string]string{
				"org.opencontainers.image.ref.name": ref.TagStr(),
				"io.containerd.image.name":          ref.Name(),
			},
		}},
	})
	if err != nil {
		return err
	}
	if err := small("index.json", index); err != nil {
		return err
	}
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config": blob(configName), "RepoTags": []string{ref.String()}, "Layers": layerNames,
	}})
	if err != nil {
		return err
	}
	if err := small("manifest.json", dockerManifest); err != nil {
		return err
	}
	return tw.Close()
}

// writeLayers writes img's compressed layers as blobs through entry and
// returns their names in the archive, in order.
func writeLayers(img ggcrv1.Image, entry func(string, int64, io.Reader) error, blob func(ggcrv1.Hash) string) ([]string, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		err = entry(blob(d), size, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		names = append(names, blob(d))
	}
	return names, nil
}

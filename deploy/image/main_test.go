package main

import (
	"debug/elf"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"quartet.dev/quartet/internal/images"
)

// TestImage builds the image around a dynamically linked program of this
// machine (the test's own binary stands in for quartet), loads the archive
// into quartet's image store as `quartet image load` does, and runs the
// program from the image's files alone (chroot, as the image's user).
func TestImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading into the store and chroot need root")
	}
	binary, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := run(binary, "example.com/quartet:test", archive); err != nil {
		t.Fatal(err)
	}
	s, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ims, err := s.Load(archive)
	if err != nil || len(ims) != 1 || ims[0].Ref != "example.com/quartet:test" {
		t.Fatalf("quartet image load: %+v, %v", ims, err)
	}
	checkLayout(t, archive, ims[0].Config)

	img, err := build(binary)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/usr/local/bin/quartet" {
		t.Errorf("config: user %q entrypoint %v; want 65532:65532 and /usr/local/bin/quartet", cf.Config.User, cf.Config.Entrypoint)
	}
	root := t.TempDir()
	tar := exec.Command("tar", "-x", "-C", root)
	tar.Stdin = mutate.Extract(img)
	if out, err := tar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking: %v\n%s", err, out)
	}
	out, err := exec.Command("chroot", "--userspec=65532:65532", root, "/usr/local/bin/quartet", "-test.list", "TestImage").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TestImage") {
		t.Errorf("running the image's binary from its files alone: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(root, "home/nonroot")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65532 {
		t.Errorf("home/nonroot is not the image user's: %v", err)
	}
	if f, err := elf.Open(binary); err == nil {
		defer f.Close()
		if libs, _ := f.ImportedLibraries(); len(libs) == 0 {
			t.Errorf("the test's binary is static: the shared libraries' part is not exercised")
		}
	}

	if err := run(filepath.Join(t.TempDir(), "missing"), "quartet:x", archive); err == nil {
		t.Errorf("a missing binary built an image")
	}
	if err := run(binary, "Not A Tag!", archive); err == nil || !strings.Contains(err.Error(), "-tag") {
		t.Errorf("a bad tag: %v", err)
	}
}

// checkLayout reads archive as an OCI image layout (unpacked with tar):
// index.json names one OCI manifest tagged "test", whose image is whole
// (every digest and size checked) and is the image `quartet image load`
// stored (its config digest is the store's image ID); and a registry
// accepts it: pushed to one and pulled back, it keeps its digest.
func checkLayout(t *testing.T, archive, storedID string) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-x", "-f", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpacking the archive: %v\n%s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI image layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index.json: %+v, %v", im, err)
	}
	desc := im.Manifests[0]
	if desc.MediaType != types.OCIManifestSchema1 || desc.Annotations["org.opencontainers.image.ref.name"] != "test" {
		t.Errorf("index.json's manifest: media type %s, annotations %v; want an OCI manifest named test", desc.MediaType, desc.Annotations)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("the layout's image is not whole: %v", err)
	}
	if cfg, err := img.ConfigName(); err != nil || !strings.Contains(storedID, cfg.Hex) {
		t.Errorf("the layout's image config %v (%v) is not the one quartet image load stored (%s)", cfg, err, storedID)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/quartet:test", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("a registry refused the image: %v", err)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pulled.Digest(); got != desc.Digest {
		t.Errorf("pulled back from the registry: digest %s, want %s", got, desc.Digest)
	}
}

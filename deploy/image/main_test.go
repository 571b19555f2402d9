package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

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

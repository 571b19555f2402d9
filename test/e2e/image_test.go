package e2e

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"quartet.dev/quartet/test/cluster"
)

// TestImageCommands: `quartet image pull|ls|rm|load` against a registry on
// a loopback port and a saved archive, on a data dir with no quartet running.
func TestImageCommands(t *testing.T) {
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		return runBinary(bin, append([]string{"image", "--data-dir", dir}, args...)...)
	}
	out, err := run("pull", reg+"/app:1")
	if err != nil || !strings.HasPrefix(out, reg+"/app:1\tsha256:") {
		t.Fatalf("pull: %q %v", out, err)
	}
	if out, err := run("pull", reg+"/app:missing"); err == nil || !strings.Contains(out, "MANIFEST_UNKNOWN") {
		t.Errorf("pull of a missing tag: %q %v", out, err)
	}
	if out, err := run("pull", "Bad Ref"); err == nil || !strings.Contains(out, "invalid image reference") {
		t.Errorf("pull of a bad reference: %q %v", out, err)
	}
	file := filepath.Join(t.TempDir(), "saved.tar")
	tag, _ := name.NewTag("example.com/saved:2")
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		t.Fatal(err)
	}
	if out, err := run("load", file); err != nil || !strings.HasPrefix(out, "example.com/saved:2\tsha256:") {
		t.Errorf("load: %q %v", out, err)
	}
	out, err = run("ls")
	if err != nil || !strings.Contains(out, reg+"/app:1") || !strings.Contains(out, "example.com/saved:2") {
		t.Errorf("ls: %q %v", out, err)
	}
	if out, err := run("rm", reg+"/app:1"); err != nil {
		t.Errorf("rm: %q %v", out, err)
	}
	if out, err := run("rm", reg+"/app:1"); err == nil || !strings.Contains(out, "not in the store") {
		t.Errorf("rm of a removed image: %q %v", out, err)
	}
	if out, _ := run("ls"); strings.Contains(out, reg+"/app:1") || !strings.Contains(out, "example.com/saved:2") {
		t.Errorf("ls after rm: %q", out)
	}
}

package images

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// ociArchive writes an OCI image layout tar holding one image annotated
// with annotations, as `docker buildx --output type=oci` writes one.
func ociArchive(t *testing.T, annotations map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := image(t, layer(t, entry{name: "hello", body: "from a layout"}))
	if err := p.AppendImage(img, layout.WithAnnotations(annotations)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "oci.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestLoadOCILayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking with ownership needs root")
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want, err   string
	}{
		{"containerd's name", map[string]string{containerdName: "example.com/app:1", ociRefName: "1"}, "example.com/app:1", ""},
		{"a whole OCI ref name", map[string]string{ociRefName: "docker.io/library/app:2"}, "docker.io/library/app:2", ""},
		{"a tag only", map[string]string{ociRefName: "latest"}, "", `"latest" is not one`},
		{"no name", nil, "", "has no full name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ims, err := s.Load(ociArchive(t, tc.annotations))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load = %+v, %v; want an error containing %q", ims, err, tc.err)
				}
				return
			}
			if err != nil || len(ims) != 1 || ims[0].Ref != tc.want {
				t.Fatalf("Load = %+v, %v; want %s", ims, err, tc.want)
			}
			if _, ok, _ := s.Get(tc.want); !ok {
				t.Errorf("loaded image %s not found", tc.want)
			}
			if left, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(left) != 0 {
				t.Errorf("tmp holds %d entries after the load", len(left))
			}
		})
	}
}

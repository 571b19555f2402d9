package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// layoutEntry is a file an OCI image layout holds; nothing else in the tar
// is extracted, so an entry cannot name a path outside the temporary dir.
var layoutEntry = regexp.MustCompile(`^(oci-layout|index\.json|blobs/[a-z0-9]+/[a-f0-9]{32,128})$`)

// The annotations that name an image in an OCI layout's index: containerd's
// full name first, then the OCI one when it is a whole reference.
const (
	containerdName = "io.containerd.image.name"
	ociRefName     = "org.opencontainers.image.ref.name"
)

// loadLayout loads an OCI image layout tar. ok is false when file is not
// one (no index.json), so that the caller reports its own error.
func (s *Store) loadLayout(file string) (ims []*Image, ok bool, err error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "load-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(dir)
	if err := extractLayout(file, dir); err != nil {
		return nil, false, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return nil, false, nil
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, true, fmt.Errorf("%s: OCI layout: %w", file, err)
	}
	index, err := p.ImageIndex()
	if err != nil {
		return nil, true, fmt.Errorf("%s: OCI layout: %w", file, err)
	}
	im, err := index.IndexManifest()
	if err != nil {
		return nil, true, fmt.Errorf("%s: OCI layout: %w", file, err)
	}
	for _, desc := range im.Manifests {
		ref := desc.Annotations[containerdName]
		if ref == "" {
			ref = desc.Annotations[ociRefName]
		}
		tag, err := name.NewTag(ref, name.StrictValidation)
		if ref == "" || err != nil {
			return nil, true, fmt.Errorf("%s: an image in the OCI layout has no full name (annotation %s or %s, e.g. docker.io/library/app:1.0) to load it as; %q is not one", file, containerdName, ociRefName, ref)
		}
		img, err := layoutImage(index, desc)
		if err != nil {
			return nil, true, fmt.Errorf("%s: %s: %w", file, ref, err)
		}
		loaded, err := s.addImage(canonical(tag), img)
		if err != nil {
			return nil, true, err
		}
		ims = append(ims, loaded)
	}
	if len(ims) == 0 {
		return nil, true, fmt.Errorf("%s: the OCI layout holds no image", file)
	}
	return ims, true, nil
}

// layoutImage is the image desc names, a multi-arch index resolved to the
// node's platform.
func layoutImage(index ggcrv1.ImageIndex, desc ggcrv1.Descriptor) (ggcrv1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return index.Image(desc.Digest)
	}
	child, err := index.ImageIndex(desc.Digest)
	if err != nil {
		return nil, err
	}
	m, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	want := Platform()
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture {
			return child.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s/%s in its index", want.OS, want.Architecture)
}

// extractLayout writes the layout files of the tar at file into dir.
func extractLayout(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		clean := filepath.ToSlash(filepath.Clean(h.Name))
		if h.Typeflag != tar.TypeReg || !layoutEntry.MatchString(clean) {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

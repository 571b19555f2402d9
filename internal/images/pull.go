package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Platform is this node's platform, which a multi-arch index resolves to.
func Platform() ggcrv1.Platform {
	return ggcrv1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
}

// PullOptions say how to reach a registry.
type PullOptions struct {
	// Keychain finds credentials (pull secrets, the registries file);
	// nil is anonymous.
	Keychain authn.Keychain
	// Platform overrides the node's platform (tests).
	Platform *ggcrv1.Platform
}

// pulls makes concurrent pulls of one layer in this process unpack it once.
var pulls sync.Map // diff ID → *sync.Mutex

// Pull fetches an image into the store (each layer only if it is not there
// yet) and records it under its reference.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain()
	}
	platform := Platform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(platform))
	if err != nil {
		return nil, err
	}
	return s.addImage(canonical(r), img)
}

// Load adds the images of a `docker save` tar (or a single-image OCI
// archive as `docker save` and `crane` write it) to the store.
func (s *Store) Load(file string) ([]*Image, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, fmt.Errorf("%s: not an image archive (docker save format): %w", file, err)
	}
	var out []*Image
	for _, desc := range m {
		tags := desc.RepoTags
		if len(tags) == 0 {
			return nil, fmt.Errorf("%s: an image in the archive has no tag to load it as", file)
		}
		for _, tag := range tags {
			t, err := name.NewTag(tag, name.WeakValidation)
			if err != nil {
				return nil, fmt.Errorf("%s: tag %q: %w", file, tag, err)
			}
			img, err := tarball.ImageFromPath(file, &t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			im, err := s.addImage(canonical(t), img)
			if err != nil {
				return nil, err
			}
			out = append(out, im)
		}
	}
	return out, nil
}

// canonical is a reference as the kubelet shows it (docker.io, not
// index.docker.io).
func canonical(r name.Reference) string {
	return strings.Replace(r.Name(), name.DefaultRegistry+"/", "docker.io/", 1)
}

func (s *Store) addImage(ref string, img ggcrv1.Image) (*Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	im := Image{Ref: ref, Digest: digest.String(), Config: cfgName.String(), Pulled: time.Now().UTC()}
	if m, err := img.Manifest(); err == nil {
		im.Size = m.Config.Size
	}
	for _, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		if size, err := l.Size(); err == nil {
			im.Size += size
		}
		if err := s.ensureLayer(diffID.String(), l); err != nil {
			return nil, err
		}
		im.Layers = append(im.Layers, diffID.String())
	}
	c := cf.Config
	im.Entrypoint, im.Cmd, im.Env, im.WorkingDir, im.User = c.Entrypoint, c.Cmd, c.Env, c.WorkingDir, c.User
	if err := s.add(im); err != nil {
		return nil, err
	}
	return &im, nil
}

// ensureLayer unpacks a layer unless it is in the store already: into a
// temporary directory, renamed into place once complete and verified.
func (s *Store) ensureLayer(diffID string, l ggcrv1.Layer) error {
	mu, _ := pulls.LoadOrStore(diffID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	final := s.LayerDir(diffID)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	err = unpack(rc, tmp)
	if err == nil {
		// Read to the end: the digest is verified there.
		_, err = io.Copy(io.Discard, rc)
	}
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return nil // another process unpacked it meanwhile
		}
		return err
	}
	return nil
}

// IsNotFound reports whether a pull failed because the registry has no
// such image (a missing tag or repository).
func IsNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// IsUnauthorized reports whether the registry refused the credentials (or
// their absence).
func IsUnauthorized(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden)
}

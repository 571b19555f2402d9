package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
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
	// Keychain finds credentials (pull secrets); nil is anonymous. The
	// registries file's credentials come after it.
	Keychain authn.Keychain
	// Registries is the registries file (mirrors, credentials, TLS); nil
	// is none.
	Registries *Registries
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
	var kcs []authn.Keychain
	if opts.Keychain != nil {
		kcs = append(kcs, opts.Keychain)
	}
	if opts.Registries != nil {
		kcs = append(kcs, opts.Registries)
	}
	kc := authn.NewMultiKeychain(kcs...)
	platform := Platform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	// The mirrors in order, then the registry itself; the first that
	// serves the image wins.
	var errs []error
	for _, e := range opts.Registries.endpoints(r.Context().Registry) {
		at, err := e.at(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		img, err := remote.Image(at, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(platform),
			remote.WithTransport(opts.Registries.transport(e.host)))
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return s.addImage(canonical(r), img)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// Load adds the images of a `docker save` tar, or of an OCI image layout
// tar (`docker buildx --output type=oci`, `skopeo copy oci-archive:`), to
// the store under the names the archive gives them.
func (s *Store) Load(file string) ([]*Image, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		if ims, ok, lerr := s.loadLayout(file); ok {
			return ims, lerr
		}
		return nil, fmt.Errorf("%s: not an image archive (a docker save tar or an OCI layout tar): %w", file, err)
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

// Canonical is a reference as the kubelet shows it in a container's
// status.image (docker.io/library/nginx:1.27), or ref itself when it does
// not parse.
func Canonical(ref string) string {
	r, err := ParseReference(ref)
	if err != nil {
		return ref
	}
	return canonical(r)
}

func canonicalRepo(r name.Repository) string {
	return strings.Replace(r.Name(), name.DefaultRegistry+"/", "docker.io/", 1)
}

func (s *Store) addImage(ref string, img ggcrv1.Image) (*Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if im, err := s.addKnown(ref, digest.String()); im != nil || err != nil {
		return im, err
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

// addKnown records ref for an image (by manifest digest) the store holds
// already under another reference or from an earlier pull, fetching none
// of its blobs again; nil when the store does not hold it.
func (s *Store) addKnown(ref, digest string) (*Image, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, known := range list {
		if known.Digest != digest {
			continue
		}
		for _, l := range known.Layers {
			if _, err := os.Stat(s.LayerDir(l)); err != nil {
				return nil, nil // a layer went missing: fetch it again
			}
		}
		im := known
		im.Ref, im.Pulled = ref, time.Now().UTC()
		im.Layers = append([]string(nil), known.Layers...)
		if err := s.add(im); err != nil {
			return nil, err
		}
		return &im, nil
	}
	return nil, nil
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

// IsUnreachable reports whether a pull failed because no registry (nor
// mirror) could be reached at all: names that do not resolve, connections
// refused or timing out, networks unreachable. A registry that answered,
// even with an error, was reached.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !IsUnreachable(e) {
				return false
			}
		}
		return true
	}
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &dns), errors.As(err, &op):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return true
	}
	return false
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

// Package images is quartet's image store: one content-addressed store per
// data dir (<data-dir>/images), shared by every node of the machine. Images
// are pulled with go-containerregistry; each layer is fetched and unpacked
// once, into a directory of its own that an overlay mount can use as a lower
// layer (whiteouts become overlay whiteouts, opaque directories get the
// overlay's opaque attribute).
//
// Nothing half-unpacked is ever used: a layer is unpacked into a temporary
// directory and renamed into place when complete, and the index of images is
// replaced atomically after its layers are in place. Temporary directories a
// killed pull left are removed when the store is opened, so a pull after a
// kill -9 starts cleanly and keeps the layers that were complete.
package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sys/unix"
)

// Image is one image in the store.
type Image struct {
	// Ref is the reference it was pulled or loaded as, fully qualified
	// ("docker.io/library/busybox:1.36").
	Ref string `json:"ref"`
	// Digest is the manifest's digest (sha256:…): the image's ID for
	// status.imageID ("<repo>@<digest>").
	Digest string `json:"digest"`
	// Config is the image config's digest.
	Config string `json:"config"`
	// Layers are the layers' diff IDs, lowest first.
	Layers []string `json:"layers"`
	// Size is the compressed size of the layers and config, as registries
	// and the kubelet report it.
	Size int64 `json:"size"`
	// Entrypoint, Cmd, Env, WorkingDir and User are the image config's.
	Entrypoint []string  `json:"entrypoint,omitempty"`
	Cmd        []string  `json:"cmd,omitempty"`
	Env        []string  `json:"env,omitempty"`
	WorkingDir string    `json:"workingDir,omitempty"`
	User       string    `json:"user,omitempty"`
	Pulled     time.Time `json:"pulled"`
}

// RepoDigest is the image's ID as the kubelet reports it: repo@digest
// (docker.io/library/nginx@sha256:…).
func (im *Image) RepoDigest() string {
	ref, err := name.ParseReference(im.Ref)
	if err != nil {
		return im.Digest
	}
	return canonicalRepo(ref.Context()) + "@" + im.Digest
}

// Names are the names Node status.images lists for the image: its
// repo@digest and its reference.
func (im *Image) Names() []string {
	return []string{im.RepoDigest(), im.Ref}
}

// Store is the image store of one data dir.
type Store struct {
	root string

	mu sync.Mutex // guards the index file within this process
}

// Open opens (creating) the store at root, removing what a killed pull left
// half done.
func Open(root string) (*Store, error) {
	for _, d := range []string{root, filepath.Join(root, "layers"), filepath.Join(root, "tmp"), filepath.Join(root, "leases")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Store{root: root}
	release, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer release()
	entries, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
	}
	return s, nil
}

// lock takes the store's lock across processes (quartet up and `quartet
// image` share the store).
func (s *Store) lock() (func(), error) {
	s.mu.Lock()
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		s.mu.Unlock()
		return nil, err
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		s.mu.Unlock()
	}, nil
}

// LayerDir is where a layer (by diff ID) is unpacked.
func (s *Store) LayerDir(diffID string) string {
	return filepath.Join(s.root, "layers", strings.ReplaceAll(diffID, ":", "-"))
}

func (s *Store) indexPath() string { return filepath.Join(s.root, "images.json") }

func (s *Store) readIndex() ([]Image, error) {
	b, err := os.ReadFile(s.indexPath())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []Image
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("image store index %s: %w", s.indexPath(), err)
	}
	return list, nil
}

func (s *Store) writeIndex(list []Image) error {
	sort.Slice(list, func(i, j int) bool { return list[i].Ref < list[j].Ref })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.root, ".images.json-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), s.indexPath())
}

// List returns the images in the store.
func (s *Store) List() ([]Image, error) {
	release, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer release()
	return s.readIndex()
}

// Get returns the image a reference names (a tag or a digest), if present.
func (s *Store) Get(ref string) (*Image, bool, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, false, err
	}
	list, err := s.List()
	if err != nil {
		return nil, false, err
	}
	im := find(list, r)
	return im, im != nil, nil
}

func find(list []Image, r name.Reference) *Image {
	for i := range list {
		im := &list[i]
		if d, ok := r.(name.Digest); ok {
			if im.Digest == d.DigestStr() && sameRepo(im.Ref, r) {
				return im
			}
			continue
		}
		if im.Ref == canonical(r) {
			return im
		}
	}
	return nil
}

func sameRepo(ref string, r name.Reference) bool {
	pr, err := name.ParseReference(ref)
	return err == nil && pr.Context().Name() == r.Context().Name()
}

// ParseReference parses an image reference as the kubelet and container
// runtimes read it (docker.io/library/ for short names, :latest when there
// is no tag).
func ParseReference(ref string) (name.Reference, error) {
	if strings.TrimSpace(ref) != ref || ref == "" {
		return nil, fmt.Errorf("invalid image reference %q", ref)
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return r, nil
}

// add records an image whose layers are all in place.
func (s *Store) add(im Image) error {
	release, err := s.lock()
	if err != nil {
		return err
	}
	defer release()
	for _, l := range im.Layers {
		if _, err := os.Stat(s.LayerDir(l)); err != nil {
			return fmt.Errorf("layer %s is not in the store", l)
		}
	}
	list, err := s.readIndex()
	if err != nil {
		return err
	}
	out := list[:0]
	for _, o := range list {
		if o.Ref != im.Ref {
			out = append(out, o)
		}
	}
	return s.writeIndex(append(out, im))
}

// Remove deletes the image a reference names and the layers no other image
// uses. inUse says whether an image (by digest) is used by a container;
// such an image is not removed.
func (s *Store) Remove(ref string, inUse func(digest string) bool) error {
	r, err := ParseReference(ref)
	if err != nil {
		return err
	}
	release, err := s.lock()
	if err != nil {
		return err
	}
	defer release()
	list, err := s.readIndex()
	if err != nil {
		return err
	}
	im := find(list, r)
	if im == nil {
		return fmt.Errorf("image %q is not in the store", ref)
	}
	if s.leased(im.Digest) || (inUse != nil && inUse(im.Digest)) {
		return fmt.Errorf("image %q is used by a container", ref)
	}
	return s.removeLocked(list, *im)
}

// removeLocked drops im from the index and removes its layers that no
// other image uses (layers a pull is unpacking meanwhile are not touched).
func (s *Store) removeLocked(list []Image, im Image) error {
	out := make([]Image, 0, len(list))
	for _, o := range list {
		if o.Ref != im.Ref {
			out = append(out, o)
		}
	}
	if err := s.writeIndex(out); err != nil {
		return err
	}
	used := map[string]bool{}
	for _, o := range out {
		for _, l := range o.Layers {
			used[l] = true
		}
	}
	var errs []error
	for _, l := range im.Layers {
		if used[l] {
			continue
		}
		// Renamed away first, so a half-removed layer is never used.
		tmp := filepath.Join(s.root, "tmp", "rm-"+filepath.Base(s.LayerDir(l)))
		if err := os.Rename(s.LayerDir(l), tmp); err != nil {
			if !os.IsNotExist(err) {
				errs = append(errs, err)
			}
			continue
		}
		if err := os.RemoveAll(tmp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lease records that a container (by ID) uses the image with this digest:
// an image with a lease is never removed, by `quartet image rm` or by
// garbage collection. The lease lasts until Unlease (or ClearLeases, when
// quartet starts and no container of a previous run is left).
func (s *Store) Lease(containerID, digest string) error {
	release, err := s.lock()
	if err != nil {
		return err
	}
	defer release()
	return os.WriteFile(filepath.Join(s.root, "leases", containerID), []byte(digest), 0o600)
}

// Unlease ends a container's lease.
func (s *Store) Unlease(containerID string) {
	_ = os.Remove(filepath.Join(s.root, "leases", containerID))
}

// ClearLeases ends every lease: quartet calls it at start, once every
// container a previous run left has been destroyed.
func (s *Store) ClearLeases() {
	entries, _ := os.ReadDir(filepath.Join(s.root, "leases"))
	for _, e := range entries {
		_ = os.Remove(filepath.Join(s.root, "leases", e.Name()))
	}
}

// leased reports whether a container holds a lease on the digest (the
// store's lock is held).
func (s *Store) leased(digest string) bool {
	return s.leases()[digest]
}

func (s *Store) leases() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(s.root, "leases"))
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(s.root, "leases", e.Name())); err == nil {
			out[string(b)] = true
		}
	}
	return out
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}

// Package oci is the runtime that runs containers from OCI images: the
// image's layers (unpacked once in the data dir's image store, package
// images) are the lower layers of an overlay whose upper layer is the
// container's own, and that overlay is the root of a container run by
// runc's libcontainer (package runc), with the same namespaces, cgroup,
// capabilities and mounts as every other container of quartet's.
//
// The agent decides when an image is pulled (pull policy, back-off, pull
// secrets); this runtime says what a pulled image runs and starts it.
package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/images"
	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/runc"
)

// Config configures the oci runtime.
type Config struct {
	Containers *runc.Manager
	Store      *images.Store
	Clock      clock.PassiveClock
}

// Runtime is the oci runtime.
type Runtime struct {
	containers *runc.Manager
	store      *images.Store
	clock      clock.PassiveClock

	mu sync.Mutex
	// running counts the running instances of each image (by digest);
	// lastUsed is when an instance of it last started.
	running  map[string]int
	lastUsed map[string]time.Time
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns an oci runtime.
func New(cfg Config) (*Runtime, error) {
	if cfg.Containers == nil || cfg.Store == nil {
		return nil, errors.New("oci runtime: needs containers and an image store")
	}
	c := cfg.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	return &Runtime{containers: cfg.Containers, store: cfg.Store, clock: c, running: map[string]int{}, lastUsed: map[string]time.Time{}}, nil
}

// Kind implements runtime.Runtime.
func (r *Runtime) Kind() runtime.Kind { return runtime.KindOCI }

// NotPresentError says that an image is not in the store.
type NotPresentError struct{ Image string }

func (e *NotPresentError) Error() string {
	return fmt.Sprintf("Container image %q is not present in the image store", e.Image)
}

// Image implements runtime.Runtime: what the image runs, once it is in the
// store (a tag or a digest reference); else a *NotPresentError.
func (r *Runtime) Image(_ context.Context, image string, _ []string) (runtime.ImageConfig, error) {
	im, ok, err := r.store.Get(image)
	if err != nil {
		return runtime.ImageConfig{}, &runtime.UnrunnableError{Message: err.Error()}
	}
	if !ok {
		return runtime.ImageConfig{}, &NotPresentError{Image: image}
	}
	return ConfigOf(im), nil
}

// ConfigOf is what an image of the store runs.
func ConfigOf(im *images.Image) runtime.ImageConfig {
	return runtime.ImageConfig{
		Entrypoint: im.Entrypoint, Cmd: im.Cmd, WorkingDir: im.WorkingDir,
		Env: im.Env, User: im.User, ID: im.RepoDigest(),
	}
}

// InUse reports whether a running container uses the image (by digest).
func (r *Runtime) InUse(digest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[digest] > 0
}

// LastUsed is when a container of the image last started (zero: not since
// quartet started).
func (r *Runtime) LastUsed(digest string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastUsed[digest]
}

// Start implements runtime.Runtime: the image's layers under the
// container's own upper layer, as the container's root.
func (r *Runtime) Start(_ context.Context, spec *runtime.ContainerSpec, onExit func()) (runtime.Instance, error) {
	if spec.StateDir == "" || spec.ID == "" {
		return nil, errors.New("oci runtime: no state dir or container ID")
	}
	ref := spec.ImageID
	if ref == "" {
		ref = spec.Image
	}
	im, ok, err := r.store.Get(ref)
	if err != nil {
		return nil, &runtime.StartError{Message: err.Error()}
	}
	if !ok {
		return nil, &runtime.StartError{Message: (&NotPresentError{Image: ref}).Error()}
	}
	if err := r.store.Lease(spec.ID, im.Digest); err != nil {
		return nil, err
	}
	rootfs := filepath.Join(spec.StateDir, "rootfs")
	lowers := make([]string, len(im.Layers))
	for i, l := range im.Layers {
		lowers[i] = r.store.LayerDir(l)
	}
	cleanup := func() {
		_ = runc.Unmount(rootfs)
		_ = os.RemoveAll(spec.StateDir)
		r.store.Unlease(spec.ID)
	}
	// A previous instance's root (left by a killed quartet) is not reused:
	// each instance starts from the image.
	if err := runc.Unmount(rootfs); err != nil {
		r.store.Unlease(spec.ID)
		return nil, err
	}
	if err := os.RemoveAll(spec.StateDir); err != nil {
		r.store.Unlease(spec.ID)
		return nil, err
	}
	if err := os.MkdirAll(spec.StateDir, 0o750); err != nil {
		r.store.Unlease(spec.ID)
		return nil, err
	}
	if err := runc.MountOverlay(lowers, filepath.Join(spec.StateDir, "upper"), filepath.Join(spec.StateDir, "work"), rootfs); err != nil {
		cleanup()
		return nil, err
	}
	s := *spec
	if err := resolveUser(&s, im.User, rootfs); err != nil {
		cleanup()
		return nil, &runtime.StartError{Message: err.Error()}
	}
	r.mu.Lock()
	r.running[im.Digest]++
	r.lastUsed[im.Digest] = r.clock.Now()
	r.mu.Unlock()
	done := func() {
		cleanup()
		r.mu.Lock()
		r.running[im.Digest]--
		if r.running[im.Digest] <= 0 {
			delete(r.running, im.Digest)
		}
		r.mu.Unlock()
		if onExit != nil {
			onExit()
		}
	}
	inst, err := r.containers.Start(&s, runtime.KindOCI, runc.Root{Path: rootfs}, done)
	if err != nil {
		r.mu.Lock()
		r.running[im.Digest]--
		if r.running[im.Digest] <= 0 {
			delete(r.running, im.Digest)
		}
		r.mu.Unlock()
		cleanup()
		return nil, err
	}
	return inst, nil
}

// resolveUser sets the user the container runs as, as containerd does for
// the kubelet: runAsUser, else the image's user (a name or uid, with an
// optional group), looked up in the image's /etc/passwd and /etc/group;
// runAsGroup replaces the group; the user's groups in /etc/group are added
// to supplementalGroups; HOME is the user's home unless the env sets it.
func resolveUser(spec *runtime.ContainerSpec, imageUser, rootfs string) error {
	userSpec := imageUser
	if spec.RunAsUser != nil {
		userSpec = strconv.FormatInt(*spec.RunAsUser, 10)
	}
	if userSpec == "" {
		userSpec = "0"
	}
	passwdPath, _ := securejoin.SecureJoin(rootfs, "etc/passwd")
	groupPath, _ := securejoin.SecureJoin(rootfs, "etc/group")
	eu, err := user.GetExecUserPath(userSpec, &user.ExecUser{Home: "/"}, passwdPath, groupPath)
	if err != nil {
		return fmt.Errorf("resolving the image's user %q: %w", userSpec, err)
	}
	uid, gid := int64(eu.Uid), int64(eu.Gid)
	spec.RunAsUser = &uid
	if spec.RunAsGroup == nil {
		spec.RunAsGroup = &gid
	}
	sec := spec.Security
	have := map[int64]bool{}
	for _, g := range sec.SupplementalGroups {
		have[g] = true
	}
	groups := append([]int64(nil), sec.SupplementalGroups...)
	for _, g := range eu.Sgids {
		if !have[int64(g)] && int64(g) != *spec.RunAsGroup {
			groups = append(groups, int64(g))
		}
	}
	sec.SupplementalGroups = groups
	spec.Security = sec
	for _, kv := range spec.Env {
		if strings.HasPrefix(kv, "HOME=") {
			return nil
		}
	}
	spec.Env = append(append([]string(nil), spec.Env...), "HOME="+eu.Home)
	return nil
}

// ExecStream implements runtime.Runtime.
func (r *Runtime) ExecStream(ctx context.Context, inst runtime.Instance, opts runtime.ExecOptions) (int, error) {
	ci, ok := inst.(*runc.Instance)
	if !ok {
		return -1, errors.New("oci runtime: not one of its instances")
	}
	return r.containers.ExecStream(ctx, ci, opts)
}

// Attach implements runtime.Runtime.
func (r *Runtime) Attach(ctx context.Context, inst runtime.Instance, opts runtime.AttachOptions) error {
	ci, ok := inst.(*runc.Instance)
	if !ok {
		return errors.New("oci runtime: not one of its instances")
	}
	return r.containers.Attach(ctx, ci, opts)
}

// KillLeftovers implements runtime.Runtime: the containers a previous run
// left are destroyed (with the process runtime's: they share the state
// root; the host unmounts their root filesystems), and then no lease on an image
// is held any more.
func (r *Runtime) KillLeftovers(context.Context) (int, error) {
	n, err := r.containers.KillLeftovers()
	if err != nil {
		return n, err
	}

	r.store.ClearLeases()
	return n, nil
}

// Shutdown implements runtime.Runtime.
func (r *Runtime) Shutdown(grace time.Duration) {
	r.containers.Shutdown(grace)
}

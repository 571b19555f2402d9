package runc

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"quartet.dev/quartet/internal/node/runtime"
)

// Pause is a pod's pause container: the init of the PID namespace that
// the pod's containers share with shareProcessNamespace, and the holder of
// the IPC and UTS namespaces (the hostname) they always share, as the
// kubelet's pod sandbox. It also owns the pod's /dev/shm, a tmpfs mounted
// on the host that every container of the pod binds.
type Pause struct {
	*Instance
	shm string
	// removed is closed once the pause has ended and its state and
	// /dev/shm are gone.
	removed chan struct{}
}

// pauseKind prefixes a pause container's ID; it is no runtime's.
const pauseKind runtime.Kind = "pause"

// StartPause starts a pod's pause container: this binary, re-executed
// as PID 1 of new PID, IPC and UTS (hostname; none: the host's) namespaces,
// where it runs the few lines of C in pause_cgo_linux.go and nothing of Go.
// It runs as root without any capability, on the host's read-only
// filesystem. stateDir is its own; it and the pod's /dev/shm are removed
// when it ends. A pause is a container like any other in the state root,
// so KillLeftovers removes what a killed quartet left.
func (m *Manager) StartPause(id, hostname, stateDir string) (*Pause, error) {
	shm := filepath.Join(stateDir, "shm")
	if err := Unmount(shm); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(stateDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(shm, 0o755); err != nil {
		return nil, err
	}
	// As containerd's sandbox /dev/shm.
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		_ = os.RemoveAll(stateDir)
		return nil, fmt.Errorf("mounting the pod's /dev/shm: %w", err)
	}
	removed := make(chan struct{})
	cleanup := func() {
		_ = Unmount(shm)
		_ = os.RemoveAll(stateDir)
		close(removed)
	}
	root := int64(0)
	spec := &runtime.ContainerSpec{
		ID:   id,
		Name: "POD",
		// The magic link reaches this binary whatever the container's root
		// holds (libcontainer's init runs a sealed copy of it).
		Argv:       []string{"/proc/self/exe"},
		Env:        []string{"QUARTET_POD_PAUSE=1"},
		Hostname:   hostname,
		RunAsUser:  &root,
		RunAsGroup: &root,
		Security:   runtime.Security{CapDrop: []string{"ALL"}, NoNewPrivileges: true},
		LogPath:    filepath.Join(stateDir, "log"),
		StateDir:   stateDir,
	}
	inst, err := m.start(spec, pauseKind, Root{Path: filepath.Join(stateDir, "rootfs"), Host: true}, cleanup, m.pauses)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("starting the pod's pause container: %w", err)
	}
	return &Pause{Instance: inst, shm: shm, removed: removed}, nil
}

// Namespace is the path of one of the pause's namespaces ("ipc", "uts",
// "pid") for a container to join.
func (p *Pause) Namespace(ns string) string {
	return fmt.Sprintf("/proc/%d/ns/%s", p.Pid(), ns)
}

// Shm is the pod's /dev/shm on the host.
func (p *Pause) Shm() string { return p.shm }

// Remove kills the pause (and with it every process left in its PID
// namespace) and waits until it and its /dev/shm are gone.
func (p *Pause) Remove() {
	_ = p.Signal(unix.SIGKILL)
	<-p.removed
}

//go:build !linux

package runc

import (
	"context"
	"errors"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/node/runtime"
)

var errLinux = errors.New("containers need Linux")

// Config configures a Manager.
type Config struct {
	StateRoot    string
	CgroupParent string
	Masked       []string
	Clock        clock.PassiveClock
}

// CgroupParentFor names the parent cgroup of a data dir's containers.
func CgroupParentFor(string) string { return "" }

// Manager is not available off Linux.
type Manager struct{}

// New fails off Linux.
func New(Config) (*Manager, error) { return nil, errLinux }

// Available reports that containers need Linux.
func Available() (bool, string) { return false, errLinux.Error() }

// Root is a container's root filesystem.
type Root struct {
	Path     string
	Host     bool
	ReadOnly bool
}

// Instance is never created off Linux.
type Instance struct{}

func (*Instance) ID() string                         { return "" }
func (*Instance) StartedAt() time.Time               { return time.Time{} }
func (*Instance) Exited() (runtime.ExitStatus, bool) { return runtime.ExitStatus{}, true }
func (*Instance) Signal(syscall.Signal) error        { return nil }
func (m *Manager) Start(*runtime.ContainerSpec, runtime.Kind, Root, func()) (*Instance, error) {
	return nil, errLinux
}
func (m *Manager) ExecStream(context.Context, *Instance, runtime.ExecOptions) (int, error) {
	return -1, errLinux
}
func (m *Manager) KillLeftovers() (int, error)                                    { return 0, nil }
func (m *Manager) Shutdown(time.Duration)                                         {}
func (m *Manager) Attach(context.Context, *Instance, runtime.AttachOptions) error { return errLinux }

// MountOverlay fails off Linux.
func MountOverlay([]string, string, string, string) error { return errLinux }

// Unmount does nothing off Linux.
func Unmount(string) error { return nil }

// Pause is never created off Linux.
type Pause struct{ *Instance }

// StartPause fails off Linux.
func (m *Manager) StartPause(string, string, string) (*Pause, error) { return nil, errLinux }

// Namespace is never called off Linux.
func (p *Pause) Namespace(string) string { return "" }

// Shm is never called off Linux.
func (p *Pause) Shm() string { return "" }

// Remove does nothing off Linux.
func (p *Pause) Remove() {}

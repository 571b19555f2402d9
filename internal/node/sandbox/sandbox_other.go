//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"net"
)

// errUnsupported is why there are no pod sandboxes off Linux.
var errUnsupported = errors.New("pod network namespaces need Linux")

// Manager sets up and tears down pod sandboxes; off Linux there are none.
type Manager struct{ net *Network }

// Available reports whether this process can create network namespaces.
func Available() error { return errUnsupported }

// New fails off Linux.
func New(Config) (*Manager, error) { return nil, errUnsupported }

func (m *Manager) Network() *Network                            { return m.net }
func (m *Manager) Notes() []string                              { return nil }
func (m *Manager) ConfFile() string                             { return "" }
func (m *Manager) Start(context.Context) error                  { return errUnsupported }
func (m *Manager) Setup(context.Context, Pod) (*Sandbox, error) { return nil, errUnsupported }
func (m *Manager) Teardown(context.Context, string) error       { return nil }
func (m *Manager) ReleaseNode(string) error                     { return nil }
func (m *Manager) Sweep(context.Context)                        {}
func (m *Manager) Stop(context.Context)                         {}

func overlappingOwner(*net.IPNet, string) string { return "" }

package controlplane

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// dataDir owns the layout of a quartet data directory.
type dataDir string

func (d dataDir) path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}
func (d dataDir) Kubeconfig() string { return d.path("kubeconfig") }
func (d dataDir) PKI() string        { return d.path("pki") }
func (d dataDir) Logs() string       { return d.path("logs") }
func (d dataDir) LogFile() string    { return d.path("logs", "quartet.log") }
func (d dataDir) Socket() string     { return d.path("quartet.sock") }

// prepare creates the data dir and checks that it can be written, so a
// read-only or mistyped path fails before anything starts.
func (d dataDir) prepare() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", d, err)
	}
	probe := d.path(".write-check")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", d, err)
	}
	os.Remove(probe)
	for _, sub := range []string{d.PKI(), d.Logs()} {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return fmt.Errorf("data dir %s: %w", d, err)
		}
	}
	return nil
}

// lock takes an exclusive lock on the data dir for the life of the process,
// so a second `quartet up` on the same directory fails instead of corrupting
// it. The lock is released by the kernel when the process exits.
func (d dataDir) lock() (release func(), err error) {
	path := d.path("lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", d, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner, _ := os.ReadFile(path)
			pid := strings.TrimSpace(string(owner))
			if pid != "" {
				return nil, fmt.Errorf("data dir %s is in use by another quartet (pid %s)", d, pid)
			}
			return nil, fmt.Errorf("data dir %s is in use by another quartet", d)
		}
		return nil, fmt.Errorf("locking data dir %s: %w", d, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) // the pid is a hint in an error message only
	}
	return func() { f.Close() }, nil
}

// freePort asks the kernel for an unused loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// listenAPI binds the API port up front, so "port in use" is a clear error
// before any component starts.
func listenAPI(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("--api-port %d: address 127.0.0.1:%d is already in use", port, port)
		}
		return nil, fmt.Errorf("--api-port %d: %w", port, err)
	}
	return l, nil
}

func nopZap() *zap.Logger { return zap.NewNop() }

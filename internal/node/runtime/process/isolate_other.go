//go:build !linux

package process

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"quartet.dev/quartet/internal/node/runtime"
)

func newSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func setChroot(attr *syscall.SysProcAttr, root string) { attr.Chroot = root }

func secureJoin(root, p string) (string, error) {
	return filepath.Join(root, filepath.Clean("/"+p)), nil
}

func isolationAvailable() (bool, string) {
	return false, "per-pod mount and UTS namespaces need Linux"
}

func enterPodNamespaces(*runtime.ContainerSpec) (string, error) {
	return "", errors.New("per-pod namespaces need Linux")
}

func joinNamespaces(int) error { return errors.New("per-pod namespaces need Linux") }

func openPTY() (term, tty *os.File, err error) {
	return nil, nil, errors.New("terminals for exec need Linux")
}

func setTerminalSize(*os.File, runtime.TerminalSize) error { return nil }

func setControllingTTY(*syscall.SysProcAttr) {}

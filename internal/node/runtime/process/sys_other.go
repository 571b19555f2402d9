//go:build !linux

package process

import (
	"errors"
	"os"
	"syscall"

	"quartet.dev/quartet/internal/node/runtime"
)

func newSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func openPTY() (term, tty *os.File, err error) {
	return nil, nil, errors.New("terminals for exec need Linux")
}

func setTerminalSize(*os.File, runtime.TerminalSize) error { return nil }

func setControllingTTY(*syscall.SysProcAttr) {}

func setNoNewPrivs() error { return errors.New("no_new_privs needs Linux") }

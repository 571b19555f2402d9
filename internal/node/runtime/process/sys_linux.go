//go:build linux

package process

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"quartet.dev/quartet/internal/node/runtime"
)

func newSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// openPTY opens a new pseudo-terminal: the controlling side for quartet and
// the terminal for the command.
func openPTY() (term, tty *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a terminal: %w", err)
	}
	term = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		term.Close()
		return nil, nil, fmt.Errorf("unlocking the terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		term.Close()
		return nil, nil, fmt.Errorf("naming the terminal: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	tfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		term.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	return term, os.NewFile(uintptr(tfd), name), nil
}

func setTerminalSize(term *os.File, sz runtime.TerminalSize) error {
	return unix.IoctlSetWinsize(int(term.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
}

// setControllingTTY makes the command a session leader whose controlling
// terminal is its stdin (a new session is also a new process group).
func setControllingTTY(attr *syscall.SysProcAttr) {
	attr.Setpgid = false
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
}

// setNoNewPrivs sets no_new_privs on the calling (locked, discarded) thread,
// so that the process it starts can never gain privileges.
func setNoNewPrivs() error {
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}

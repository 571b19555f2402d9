package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxSocketPath is the longest path a unix socket can be bound at (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// Prepare creates the data dir when it is absent and makes sure nobody but
// the user running quartet could have written what quartet will read from
// it: the data dir and everything at its top level, the certificates, etcd's
// files and the node agents' records must be owned by that user, or Prepare
// refuses (another user may have planted them). Modes that let others in are
// tightened: the data dir to 0700, anything quartet trusts to not writable by
// group or others. It returns one line per change it made, for the caller to
// print.
func (d Dir) Prepare() (fixed []string, err error) {
	if len(d.ControlSocket()) > maxSocketPath {
		return nil, fmt.Errorf("data dir %s: the path is too long for the unix sockets in it (%d bytes, at most %d); use a shorter --data-dir",
			d, len(d.ControlSocket()), maxSocketPath)
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", d, err)
	}
	fi, err := os.Stat(string(d))
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", d, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("data dir %s: not a directory", d)
	}
	if err := ownedByMe(string(d), fi); err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(string(d), 0o700); err != nil {
			return nil, fmt.Errorf("data dir %s is mode %04o and cannot be made private: %w", d, perm, err)
		}
		fixed = append(fixed, fmt.Sprintf("data dir %s was mode %04o (open to other users); it is 0700 now", d, perm))
	}
	probe := d.join(".write-check")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", d, err)
	}
	_ = os.Remove(probe) // a leftover empty probe file is harmless

	g := guard{}
	if err := g.check(string(d), false); err != nil {
		return nil, err
	}
	for _, tree := range []string{d.PKI(), d.Etcd()} {
		if err := g.check(tree, true); err != nil {
			return nil, err
		}
	}
	if err := g.check(d.Nodes(), false); err != nil {
		return nil, err
	}
	for _, sub := range []string{d.PKI(), d.Logs()} {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, fmt.Errorf("data dir %s: %w", d, err)
		}
	}
	return append(fixed, g.fixed...), nil
}

// guard checks the entries of directories quartet trusts.
type guard struct{ fixed []string }

// check checks the entries of dir (all of them below it when deep): each must
// be owned by this user; one writable by group or others loses those bits.
// A missing dir has nothing to check.
func (g *guard) check(dir string, deep bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile (a socket of a process that just ended)
		}
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if err := ownedByMe(path, fi); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 != 0 {
			perm := fi.Mode().Perm()
			if err := os.Chmod(path, perm&^0o022); err != nil {
				return fmt.Errorf("%s is writable by other users (mode %04o) and cannot be fixed: %w", path, perm, err)
			}
			g.fixed = append(g.fixed, fmt.Sprintf("%s was writable by other users (mode %04o); it is %04o now", path, perm, perm&^0o022))
		}
		if deep && fi.IsDir() {
			if err := g.check(path, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckOwned returns nil when path (after symbolic links) is a file that
// only the user running quartet could have written: owned by that user and
// not writable by group or others. A missing file is reported as an error
// wrapping fs.ErrNotExist.
func CheckOwned(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := ownedByMe(path, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o): refusing to read it; chmod go-w it after checking its contents", path, perm)
	}
	return nil
}

// ownedByMe refuses a path that belongs to another user.
func ownedByMe(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if me := os.Geteuid(); int(st.Uid) != me {
		return fmt.Errorf("%s belongs to uid %d, not to the user running quartet (uid %d): another user may have written it; "+
			"remove it after checking, or use another --data-dir", path, st.Uid, me)
	}
	return nil
}

// Lock takes an exclusive lock on the data dir for the life of the process,
// so a second `quartet up` on the same directory fails instead of corrupting
// it. The kernel releases the lock when the process exits.
func (d Dir) Lock() (release func(), err error) {
	path := d.LockFile()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", d, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner, _ := os.ReadFile(path)
			if pid := strings.TrimSpace(string(owner)); pid != "" {
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

//go:build linux

package process

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"quartet.dev/quartet/internal/node/runtime"
)

func newSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func setChroot(attr *syscall.SysProcAttr, root string) { attr.Chroot = root }

func secureJoin(root, p string) (string, error) { return securejoin.SecureJoin(root, p) }

// isolationAvailable tries, on a throw-away thread, what enterPodNamespaces does.
func isolationAvailable() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "quartet is not running as root"
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it dies with this goroutine, taking
		// the namespaces with it.
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
			errc <- fmt.Errorf("unshare mount and UTS namespaces: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("making mounts private: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "quartet-isolation-check-")
		if err != nil {
			errc <- err
			return
		}
		defer os.Remove(dir)
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
			errc <- fmt.Errorf("mounting tmpfs: %w", err)
			return
		}
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return false, err.Error()
	}
	return true, ""
}

// enterPodNamespaces runs on a locked thread that is discarded after the
// container ends. It moves the thread into new mount and UTS namespaces,
// builds the container's root and returns its path, to be used as chroot.
//
// The root is a tmpfs that mirrors the host's top-level entries through bind
// mounts, so the container sees the host's programs and libraries. Every
// volume is bind-mounted at its mountPath. A mountPath that does not exist is
// created without touching the host: at the top level it is a directory in
// the tmpfs; deeper, the nearest existing host directory is covered by an
// overlay whose upper layer lives in memory. All of it vanishes with the
// namespace when the container's last process ends.
func enterPodNamespaces(spec *runtime.ContainerSpec) (string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
		return "", fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "", fmt.Errorf("making mounts private: %w", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return "", fmt.Errorf("sethostname: %w", err)
		}
	}
	root := filepath.Join(spec.StateDir, "rootfs")
	scratch := filepath.Join(spec.StateDir, "scratch")
	for _, d := range []string{root, scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID, "mode=0755"); err != nil {
		return "", fmt.Errorf("mounting the container root: %w", err)
	}
	// Unbindable, so that binding a host directory that contains the data
	// dir does not copy this root into itself.
	if err := unix.Mount("", root, "", unix.MS_UNBINDABLE, ""); err != nil {
		return "", fmt.Errorf("making the container root unbindable: %w", err)
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		src := "/" + e.Name()
		dst := filepath.Join(root, e.Name())
		fi, err := os.Lstat(src)
		if err != nil {
			continue
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				continue
			}
			if err := os.Symlink(target, dst); err != nil {
				return "", err
			}
		case fi.IsDir():
			if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
				return "", err
			}
			if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return "", fmt.Errorf("binding %s: %w", src, err)
			}
		case fi.Mode().IsRegular():
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, fi.Mode().Perm())
			if err != nil {
				return "", err
			}
			f.Close()
			if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
				return "", fmt.Errorf("binding %s: %w", src, err)
			}
		}
	}

	// A private /tmp, as a container has: processes of different pods do
	// not meet in the host's /tmp.
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err == nil && fi.IsDir() {
		if err := unix.Mount("tmpfs", filepath.Join(root, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return "", fmt.Errorf("mounting /tmp: %w", err)
		}
	}
	// Scratch space for overlay upper layers, mounted after the binds so that
	// no bind copies it. (It cannot be unbindable: overlayfs clones its upper
	// layer's mount.)
	if err := unix.Mount("tmpfs", scratch, "tmpfs", 0, "mode=0700"); err != nil {
		return "", fmt.Errorf("mounting scratch space: %w", err)
	}
	b := &rootBuilder{root: root, scratch: scratch, writable: []string{filepath.Join(root, "tmp")}}
	mounts := append([]runtime.Mount(nil), spec.Mounts...)
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].ContainerPath), "/") < strings.Count(filepath.Clean(mounts[j].ContainerPath), "/")
	})
	for _, m := range mounts {
		if err := b.bind(m); err != nil {
			return "", err
		}
	}
	if spec.WorkingDir != "" {
		if _, err := b.ensure(spec.WorkingDir, true); err != nil {
			return "", fmt.Errorf("workingDir %s: %w", spec.WorkingDir, err)
		}
	}
	return root, nil
}

// rootBuilder creates mount points inside a container root without writing
// to host directories.
type rootBuilder struct {
	root    string
	scratch string
	// writable are host paths (inside root) where creating entries is fine:
	// volumes, overlays and the tmpfs root itself.
	writable []string
	overlays int
}

func (b *rootBuilder) isWritable(p string) bool {
	if filepath.Dir(p) == b.root || p == b.root {
		return true
	}
	for _, w := range b.writable {
		if p == w || strings.HasPrefix(p, w+"/") {
			return true
		}
	}
	return false
}

// ensure makes the path exist inside root, as a directory or an empty file,
// and returns its host path.
func (b *rootBuilder) ensure(containerPath string, dir bool) (string, error) {
	target, err := securejoin.SecureJoin(b.root, containerPath)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(target); err == nil {
		if fi.IsDir() != dir {
			kind := "a directory"
			if !dir {
				kind = "a file"
			}
			return "", fmt.Errorf("%s exists and is not %s", containerPath, kind)
		}
		return target, nil
	}
	// The nearest ancestor that exists.
	anc := filepath.Dir(target)
	for {
		if _, err := os.Stat(anc); err == nil {
			break
		}
		if anc == b.root || anc == "/" {
			break
		}
		anc = filepath.Dir(anc)
	}
	if !b.isWritable(filepath.Join(anc, "x")) {
		if err := b.overlay(anc); err != nil {
			return "", err
		}
	}
	parent := filepath.Dir(target)
	if dir {
		parent = target
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	if !dir {
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", err
		}
		f.Close()
	}
	return target, nil
}

// overlay covers the host directory at anc (inside root) with an overlay
// whose upper layer is in the container's scratch tmpfs.
func (b *rootBuilder) overlay(anc string) error {
	lower := strings.TrimPrefix(anc, b.root)
	if lower == "" {
		lower = "/"
	}
	if strings.ContainsAny(lower, ",:\\") {
		return fmt.Errorf("cannot create a mount point under %s", lower)
	}
	b.overlays++
	upper := filepath.Join(b.scratch, fmt.Sprintf("ovl%d", b.overlays), "upper")
	work := filepath.Join(b.scratch, fmt.Sprintf("ovl%d", b.overlays), "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", anc, "overlay", 0, opts); err != nil {
		return fmt.Errorf("creating a mount point under %s: overlay: %w", lower, err)
	}
	b.writable = append(b.writable, anc)
	return nil
}

func (b *rootBuilder) bind(m runtime.Mount) error {
	fi, err := os.Stat(m.HostPath)
	if err != nil {
		return fmt.Errorf("volume source for %s: %w", m.ContainerPath, err)
	}
	target, err := b.ensure(m.ContainerPath, fi.IsDir())
	if err != nil {
		return fmt.Errorf("mount point %s: %w", m.ContainerPath, err)
	}
	if err := unix.Mount(m.HostPath, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s at %s: %w", m.HostPath, m.ContainerPath, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", m.ContainerPath, err)
		}
	}
	b.writable = append(b.writable, target)
	return nil
}

// joinNamespaces moves the calling locked thread into the mount and UTS
// namespaces of pid. The thread must be discarded afterwards.
func joinNamespaces(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("container is not running")
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	for _, ns := range []struct {
		name string
		flag int
	}{{"mnt", unix.CLONE_NEWNS}, {"uts", unix.CLONE_NEWUTS}} {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("container is not running: %w", err)
		}
		err = unix.Setns(fd, ns.flag)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("setns %s: %w", ns.name, err)
		}
	}
	return nil
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

package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openSubPath opens a volume's subPath without following any link out of
// the volume, creating it (as a directory, inside the volume) when it does
// not exist, as the kubelet does. The caller stages the returned file
// (stageSubPath) and closes it.
func openSubPath(volume, sub string) (*os.File, error) {
	root, err := os.OpenFile(volume, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(int(root.Fd()), sub, how)
	if errors.Is(err, unix.ENOENT) {
		var created *os.File
		created, err = pathrs.MkdirAllHandle(root, sub, 0o777)
		if err != nil {
			return nil, fmt.Errorf("creating subPath %q in its volume: %w", sub, err)
		}
		created.Close()
		fd, err = unix.Openat2(int(root.Fd()), sub, how)
	}
	switch {
	case errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("subPath %q leads out of its volume (through a symbolic link or \"..\"), which is not allowed", sub)
	case errors.Is(err, unix.ENOSYS):
		return nil, errors.New("subPath needs openat2 (Linux 5.6 or later)")
	case err != nil:
		return nil, fmt.Errorf("subPath %q: %w", sub, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(volume, sub)), nil
}

// stageSubPath bind-mounts exactly the file f (an openSubPath result) at
// a staging path of quartet's own, private, so that a container's mount of
// the staging path gets what was checked whatever the volume's links do
// later (the kubelet's way). unstage must run once the container has
// started (its mount namespace keeps its own copy).
func stageSubPath(f *os.File, staging string) (unstage func(), err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(staging), 0o750); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(staging, 0o750)
	} else {
		var sf *os.File
		sf, err = os.OpenFile(staging, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err == nil {
			sf.Close()
		}
	}
	if err != nil && !os.IsExist(err) {
		return nil, err
	}
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, staging, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(staging)
		return nil, fmt.Errorf("staging subPath: %w", err)
	}
	if err := unix.Mount("", staging, "", unix.MS_PRIVATE, ""); err != nil {
		_ = unix.Unmount(staging, unix.MNT_DETACH)
		_ = os.Remove(staging)
		return nil, fmt.Errorf("staging subPath: %w", err)
	}
	return func() {
		_ = unix.Unmount(staging, unix.MNT_DETACH)
		_ = os.Remove(staging)
	}, nil
}

// unmountUnder detaches every mount below dir (staging mounts a crashed
// run left), deepest first, so that removing directories never reaches
// into a volume. It returns how many it detached.
func unmountUnder(dir string) int {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0
	}
	prefix := filepath.Clean(dir) + "/"
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountPath(f[4])
		if strings.HasPrefix(mp, prefix) {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	n := 0
	for _, p := range points {
		if unix.Unmount(p, unix.MNT_DETACH) == nil {
			n++
		}
	}
	return n
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

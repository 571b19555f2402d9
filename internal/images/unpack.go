package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// unpack extracts a layer's (uncompressed) tar into dir as an overlay lower
// layer: ".wh.<name>" becomes an overlay whiteout (a 0/0 character device),
// ".wh..wh..opq" marks its directory opaque (trusted.overlay.opaque=y).
// Ownership, modes, times, links, devices and extended attributes are kept.
// An entry that would land outside dir, or go through a symbolic link, is
// an error: the layer is refused.
func unpack(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer: %w", err)
		}
		if err := unpackEntry(tr, hdr, dir, &dirs); err != nil {
			return err
		}
	}
	// Directories last: writing into them changed their times.
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(dirs[i].mtime.UnixNano())
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// dirTime is a directory's time, set once everything in it is written.
type dirTime struct {
	path  string
	mtime time.Time
}

// unpackEntry writes one entry of a layer (whiteouts as overlay's), its
// content read from tr; a directory's time is added to dirs.
func unpackEntry(tr *tar.Reader, hdr *tar.Header, dir string, dirs *[]dirTime) error {
	rel := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
	if rel == "" {
		return nil
	}
	parentRel, base := path.Split(rel)
	parent, err := within(dir, parentRel)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if base == ".wh..wh..opq" {
		if err := unix.Setxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("marking %s opaque: %w", parentRel, err)
		}
		return nil
	}
	if strings.HasPrefix(base, ".wh.") {
		target := filepath.Join(parent, strings.TrimPrefix(base, ".wh."))
		_ = os.RemoveAll(target)
		if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		return nil
	}
	target := filepath.Join(parent, base)
	if fi, err := os.Lstat(target); err == nil && (!fi.IsDir() || hdr.Typeflag != tar.TypeDir) {
		if err := os.RemoveAll(target); err != nil {
			return err
		}
	}
	written, err := writeEntry(tr, hdr, dir, rel, target)
	if err != nil || !written {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		*dirs = append(*dirs, dirTime{target, hdr.ModTime})
	}
	return setMetadata(hdr, target)
}

// writeEntry creates target as the entry says (written false: the entry
// carries nothing to write, as pax globals).
func writeEntry(tr *tar.Reader, hdr *tar.Header, dir, rel, target string) (written bool, err error) {
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
			return false, err
		}
	case tar.TypeReg:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return false, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, fmt.Errorf("writing %s: %w", rel, err)
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return false, err
		}
	case tar.TypeLink:
		src, err := within(dir, strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/"))
		if err != nil {
			return false, fmt.Errorf("layer entry %q: hard link: %w", hdr.Name, err)
		}
		if err := os.Link(src, target); err != nil {
			return false, fmt.Errorf("hard link %s: %w", rel, err)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		if err := unix.Mknod(target, kind|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return false, fmt.Errorf("device %s: %w", rel, err)
		}
	default:
		return false, nil // pax globals and the like carry nothing to write
	}
	return true, nil
}

// setMetadata gives target the entry's owner, extended attributes, mode
// and times (a directory's time is set later).
func setMetadata(hdr *tar.Header, target string) error {
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil && !errors.Is(err, unix.EPERM) {
		return err
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			_ = unix.Lsetxattr(target, x, []byte(v), 0)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears the setuid and setgid bits.
		if err := unix.Chmod(target, uint32(hdr.Mode)&0o7777); err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.AccessTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if hdr.AccessTime.IsZero() {
			ts[0] = ts[1]
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// within joins rel to dir and refuses a result outside dir or one reached
// through a symbolic link of the layer.
func within(dir, rel string) (string, error) {
	want := filepath.Join(dir, rel)
	got, err := securejoin.SecureJoin(dir, rel)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("path goes through a symbolic link or out of the layer")
	}
	return want, nil
}

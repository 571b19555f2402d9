package runc

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MountOverlay mounts an overlay at target: lowers (the image's layers,
// lowest first) under a writable upper dir (the container's own; work is
// the overlay's scratch dir on the same filesystem). It is mounted on the
// host, where the container's mount namespace gets it as its root;
// Unmount removes it when the container has ended.
func MountOverlay(lowers []string, upper, work, target string) error {
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if len(lowers) == 0 {
		// An image without layers: an empty lower layer.
		empty := target + ".empty"
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lowers = []string{empty}
	}
	// Overlay lists the uppermost lower layer first.
	rev := make([]string, len(lowers))
	for i, l := range lowers {
		if strings.ContainsAny(l, ":,") {
			return fmt.Errorf("layer path %q cannot be given to overlay", l)
		}
		rev[len(lowers)-1-i] = l
	}
	data := "lowerdir=" + strings.Join(rev, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("the image has too many layers (%d) to mount them as one overlay here", len(lowers))
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mounting the image's layers: %w", err)
	}
	return nil
}

// Unmount detaches the mount at target, if there is one.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

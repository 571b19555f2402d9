package storage

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// dirs creates and removes the directories that back volumes.
type dirs interface {
	// Create makes path (and its parents) and leaves it mode 0777 whatever
	// the umask, so a pod running as any user can write to its volume.
	// Creating an existing directory succeeds.
	Create(path string) error
	// Remove deletes path and everything under it. Removing a missing
	// directory succeeds.
	Remove(path string) error
}

var _ dirs = osDirs{}

// osDirs is the real disk.
type osDirs struct{}

func (osDirs) Create(path string) error {
	if err := os.MkdirAll(path, 0o777); err != nil {
		return fmt.Errorf("create volume directory: %w", err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		return fmt.Errorf("make volume directory writable: %w", err)
	}
	return nil
}

func (osDirs) Remove(path string) error {
	err := os.RemoveAll(path)
	if err == nil {
		return nil
	}
	// A pod may have left read-only directories behind (mode 0555), which
	// RemoveAll cannot empty; make every directory writable and try again.
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, walkErr error) error {
		if walkErr == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove volume directory: %w", err)
	}
	return nil
}

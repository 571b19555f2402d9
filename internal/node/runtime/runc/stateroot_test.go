//go:build linux

package runc

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/node/runtime"
)

// exesealLog records libcontainer's debug lines about sealing the binary
// for a container's init.
type exesealLog struct {
	mu    sync.Mutex
	lines []string
}

func (h *exesealLog) Levels() []logrus.Level { return []logrus.Level{logrus.DebugLevel} }

func (h *exesealLog) Fire(e *logrus.Entry) error {
	if strings.Contains(e.Message, "exeseal") || strings.Contains(e.Message, "overlayfs") {
		h.mu.Lock()
		h.lines = append(h.lines, e.Message)
		h.mu.Unlock()
	}
	return nil
}

func (h *exesealLog) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := strings.Join(h.lines, "\n")
	h.lines = nil
	return s
}

// TestStateRootOutsideBinaryDir checks that a data dir's container state
// lies outside the data dir, under /run/quartet-<id>, so that libcontainer
// seals the binary with overlayfs (rather than copying it into memory, as
// it does when the state dir lies inside the binary's directory, also
// checked here), and that Shutdown removes that directory.
func TestStateRootOutsideBinaryDir(t *testing.T) {
	if ok, why := Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	dir := t.TempDir()
	root := datadir.Dir(dir).Containers()
	if !strings.HasPrefix(root, "/run/quartet-"+datadir.Dir(dir).ID()+"/") {
		t.Fatalf("Containers() = %s, want it under /run/quartet-%s", root, datadir.Dir(dir).ID())
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	inside := filepath.Join(filepath.Dir(exe), "containers-state")
	defer os.RemoveAll(inside)
	if got := binaryDirHolding(inside); got != filepath.Dir(exe) {
		t.Errorf("binaryDirHolding(%s) = %q, want %s", inside, got, filepath.Dir(exe))
	}
	if got := binaryDirHolding(root); got != "" {
		t.Errorf("binaryDirHolding(%s) = %q, want none", root, got)
	}

	h := &exesealLog{}
	logger := logrus.StandardLogger()
	level := logger.GetLevel()
	logger.SetLevel(logrus.DebugLevel)
	logger.AddHook(h)
	defer func() { logger.SetLevel(level); logger.ReplaceHooks(make(logrus.LevelHooks)) }()

	for _, tc := range []struct {
		root    string
		overlay bool
	}{{root, true}, {inside, false}} {
		m, err := New(Config{StateRoot: tc.root, CgroupParent: CgroupParentFor(dir), Masked: []string{dir}})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := m.Start(sleeper(dir, "c", nil, false), runtime.KindProcess, Root{Path: filepath.Join(dir, "c", "rootfs"), Host: true}, nil)
		if err != nil {
			m.Shutdown(time.Second)
			t.Fatal(err)
		}
		waitExec(t, inst, "sleep")
		m.Shutdown(time.Second)
		got := h.take()
		if sealed := strings.Contains(got, "using overlayfs"); sealed != tc.overlay {
			t.Errorf("state root %s: libcontainer sealed the binary with overlayfs: %v, want %v; its log:\n%s", tc.root, sealed, tc.overlay, got)
		}
	}
	if _, err := os.Stat(filepath.Dir(root)); !os.IsNotExist(err) {
		t.Errorf("%s is left after Shutdown: %v", filepath.Dir(root), err)
	}
}

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// TestStartOnOpenDataDir starts on a data dir left open to other users, with
// a key file anyone could write and an oversized log: quartet makes them
// private, says so, and rotates the log.
func TestStartOnOpenDataDir(t *testing.T) {
	dir := datadir.Dir(filepath.Join(t.TempDir(), "q"))
	if err := os.MkdirAll(dir.Logs(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir.PKI(), 0o700); err != nil {
		t.Fatal(err)
	}
	note := filepath.Join(dir.PKI(), "note.txt")
	if err := os.WriteFile(note, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// 33 MB of old log: above the 32 MB cap.
	old := bytes.Repeat([]byte("an old log line that fills the file up to its size cap\n"), 33<<20/55+1)
	if err := os.WriteFile(dir.LogFile(), old, 0o600); err != nil {
		t.Fatal(err)
	}
	for p, m := range map[string]os.FileMode{dir.Path(): 0o777, note: 0o666} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}

	c := start(t, cluster.Options{Args: noNodes(), DataDir: dir.Path()})
	out := c.Output.String()
	for _, want := range []string{
		"warning: data dir " + dir.Path() + " was mode 0777 (open to other users); it is 0700 now",
		"warning: " + note + " was writable by other users (mode 0666); it is 0644 now",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for p, want := range map[string]os.FileMode{dir.Path(): 0o700, note: 0o644} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %04o", p, fi.Mode(), err, want)
		}
	}
	fi, err := os.Stat(dir.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= int64(len(old)) {
		t.Errorf("%s is %d bytes: not rotated", dir.LogFile(), fi.Size())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", dir.LogFile(), fi.Mode().Perm())
	}
	backups, _ := filepath.Glob(filepath.Join(dir.Logs(), "quartet-*.log"))
	if len(backups) != 1 {
		t.Errorf("log backups %v, want the old log kept once", backups)
	}
}

package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const nobody = 65534

func newDir(t *testing.T) Dir {
	t.Helper()
	d, err := New(filepath.Join(t.TempDir(), "q"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestPrepareCreatesPrivateDir(t *testing.T) {
	d := newDir(t)
	fixed, err := d.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if len(fixed) != 0 {
		t.Errorf("fixed on a new dir: %v", fixed)
	}
	for _, p := range []string{d.Path(), d.PKI(), d.Logs()} {
		if m := mode(t, p); m != 0o700 {
			t.Errorf("%s: mode %04o, want 0700", p, m)
		}
	}
}

func TestPrepareTightensModes(t *testing.T) {
	d := newDir(t)
	if err := os.MkdirAll(d.PKI(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.PKI(), "ca.key"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d.PKI(), "ca.key"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.Path(), 0o777); err != nil {
		t.Fatal(err)
	}
	fixed, err := d.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, d.Path()); m != 0o700 {
		t.Errorf("data dir mode %04o, want 0700", m)
	}
	if m := mode(t, filepath.Join(d.PKI(), "ca.key")); m != 0o644 {
		t.Errorf("ca.key mode %04o, want 0644", m)
	}
	all := strings.Join(fixed, "\n")
	if !strings.Contains(all, "was mode 0777") || !strings.Contains(all, "ca.key was writable by other users (mode 0666)") {
		t.Errorf("fixed lines do not say what changed:\n%s", all)
	}
}

func TestPrepareRefusesOthersFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	for name, plant := range map[string]func(d Dir) string{
		"images.yaml":         func(d Dir) string { return d.Images() },
		"certificate":         func(d Dir) string { return filepath.Join(d.PKI(), "admin.crt") },
		"etcd file":           func(d Dir) string { return filepath.Join(d.Etcd(), "member", "snap", "db") },
		"node record":         func(d Dir) string { return d.AddedNodes() },
		"top-level directory": func(d Dir) string { return filepath.Join(d.Path(), "storage", "x") },
	} {
		t.Run(name, func(t *testing.T) {
			d := newDir(t)
			path := plant(d)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("planted"), 0o644); err != nil {
				t.Fatal(err)
			}
			target := path
			if name == "top-level directory" {
				target = filepath.Dir(path)
			}
			if err := os.Lchown(target, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			_, err := d.Prepare()
			if err == nil || !strings.Contains(err.Error(), target+" belongs to uid 65534") {
				t.Fatalf("Prepare = %v, want a refusal naming %s", err, target)
			}
		})
	}
	t.Run("data dir", func(t *testing.T) {
		d := newDir(t)
		if err := os.MkdirAll(d.Path(), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.Path(), nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Prepare(); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("Prepare = %v, want a refusal", err)
		}
	})
}

func TestCheckOwned(t *testing.T) {
	d := newDir(t)
	if _, err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := CheckOwned(d.Images()); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
	if err := os.WriteFile(d.Images(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckOwned(d.Images()); err != nil {
		t.Errorf("own file: %v", err)
	}
	if err := os.Chmod(d.Images(), 0o646); err != nil {
		t.Fatal(err)
	}
	if err := CheckOwned(d.Images()); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("world-writable file: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(d.Images(), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.Images(), nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if err := CheckOwned(d.Images()); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("another user's file: %v", err)
		}
	}
}

func TestPrepareRefusesLongPath(t *testing.T) {
	d := Dir("/" + strings.Repeat("x", 100))
	if _, err := d.Prepare(); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("Prepare = %v, want too long", err)
	}
}

func TestLock(t *testing.T) {
	d := newDir(t)
	if _, err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	release, err := d.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lock(); err == nil || !strings.Contains(err.Error(), "in use by another quartet (pid") {
		t.Errorf("second Lock = %v, want in use", err)
	}
	release()
	release2, err := d.Lock()
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	release2()
}

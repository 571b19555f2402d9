package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNormalizeImage(t *testing.T) {
	cases := map[string][2]string{
		"busybox":                                 {"busybox", "busybox"},
		"busybox:1.36":                            {"busybox:1.36", "busybox"},
		"docker.io/library/busybox:1.36":          {"busybox:1.36", "busybox"},
		"registry.k8s.io/pause:3.10":              {"registry.k8s.io/pause:3.10", "registry.k8s.io/pause"},
		"localhost:5000/app":                      {"localhost:5000/app", "localhost:5000/app"},
		"nginx@sha256:abc":                        {"nginx", "nginx"},
		"docker.io/myorg/migrator:1.4.0@sha256:1": {"myorg/migrator:1.4.0", "myorg/migrator"},
	}
	for in, want := range cases {
		if got := NormalizeImage(in, true); got != want[0] {
			t.Errorf("NormalizeImage(%q, true) = %q, want %q", in, got, want[0])
		}
		if got := NormalizeImage(in, false); got != want[1] {
			t.Errorf("NormalizeImage(%q, false) = %q, want %q", in, got, want[1])
		}
	}
}

func TestImagesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "images.yaml")
	im := NewImages(path)
	if e, ok := im.Lookup("busybox:1.36"); !ok || e.Cmd[0] != "sh" {
		t.Fatalf("default busybox = %+v %v", e, ok)
	}
	if _, ok := im.Lookup("nginx:1.27"); ok {
		t.Fatalf("nginx is mapped by default")
	}
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		// A distinct modification time, so the change is seen.
		mt := time.Now().Add(time.Duration(len(s)) * time.Second)
		_ = os.Chtimes(path, mt, mt)
	}
	write("nginx:\n  entrypoint: [/usr/sbin/nginx, -g, 'daemon off;']\nbusybox:1.36:\n  cmd: [ash]\n")
	if e, ok := im.Lookup("docker.io/library/nginx:1.27"); !ok || e.Entrypoint[0] != "/usr/sbin/nginx" {
		t.Errorf("nginx after the file = %+v %v", e, ok)
	}
	if e, _ := im.Lookup("busybox:1.36"); e.Cmd[0] != "ash" {
		t.Errorf("tagged entry does not win: %+v", e)
	}
	if e, _ := im.Lookup("busybox:1.35"); e.Cmd[0] != "sh" {
		t.Errorf("untagged default lost: %+v", e)
	}
	write("nginx: [not, an, entry]\n")
	if im.Err() == nil {
		t.Errorf("a bad file is not reported")
	}
	if _, ok := im.Lookup("nginx"); !ok {
		t.Errorf("a bad file replaced the previous map")
	}

	// A file another user could have written is not read.
	write("nginx:\n  entrypoint: [/bin/evil]\n")
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if e, _ := im.Lookup("nginx"); len(e.Entrypoint) > 0 && e.Entrypoint[0] == "/bin/evil" {
		t.Errorf("a world-writable images.yaml was read")
	}
	if err := im.Err(); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("Err = %v, want writable by other users", err)
	}
	if os.Geteuid() == 0 {
		write("nginx:\n  entrypoint: [/bin/evil2]\n")
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if e, _ := im.Lookup("nginx"); len(e.Entrypoint) > 0 && e.Entrypoint[0] == "/bin/evil2" {
			t.Errorf("another user's images.yaml was read")
		}
		if err := im.Err(); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("Err = %v, want belongs to uid 65534", err)
		}
	}
}

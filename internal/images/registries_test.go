package images

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
)

func writeRegistries(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadRegistries(t *testing.T) {
	r, err := LoadRegistries(filepath.Join(t.TempDir(), "none.yaml"))
	if err != nil || len(r.Mirrors)+len(r.Configs) != 0 {
		t.Errorf("a missing file: %+v, %v", r, err)
	}
	r, err = LoadRegistries(writeRegistries(t, `
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "mirror.example.com"]
    rewrite: {"^library/(.*)": "mirrored/$1"}
configs:
  mirror.example.com:
    auth: {username: u, password: p}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Mirrors["docker.io"]; len(m.Endpoints) != 2 || m.Rewrite["^library/(.*)"] != "mirrored/$1" || r.Configs["mirror.example.com"].Auth.Username != "u" {
		t.Errorf("file = %+v", r)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", "mirrors:\n  docker.io:\n    endpoints: [x]\n", `unknown field "endpoints"`},
		{"scheme", "mirrors:\n  docker.io:\n    endpoint: [\"ftp://m\"]\n", "want http:// or https://"},
		{"path", "mirrors:\n  docker.io:\n    endpoint: [\"https://m/sub\"]\n", "a path other than /v2"},
		{"no host", "mirrors:\n  docker.io:\n    endpoint: [\"https://\"]\n", "no host"},
		{"rewrite", "mirrors:\n  docker.io:\n    endpoint: [m]\n    rewrite: {\"(\": x}\n", "mirrors.docker.io.rewrite"},
		{"CA file", "configs:\n  m:\n    tls: {ca_file: /nonexistent/ca.pem}\n", "configs.m.tls"},
		{"not YAML", "mirrors: [", "registries.yaml"},
	} {
		if _, err := LoadRegistries(writeRegistries(t, tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// A file another user could write chooses what runs as root: refused.
	p := writeRegistries(t, "mirrors: {}\n")
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegistries(p); err == nil {
		t.Errorf("a world-writable registries file was read")
	}
}

// TestMirrorEndpoints: a registry's mirrors in order, then the registry
// itself; docker.io under either name; "*" for registries without their
// own; a mirror that is the registry itself is not tried twice.
func TestMirrorEndpoints(t *testing.T) {
	r := &Registries{Mirrors: map[string]Mirror{
		"docker.io":   {Endpoints: []string{"http://127.0.0.1:5000", "https://mirror.example.com"}, Rewrite: map[string]string{"^library/(.*)": "mirrored/$1"}},
		"ghcr.io":     {Endpoints: []string{"ghcr.io"}},
		"*":           {Endpoints: []string{"https://any.example.com"}},
		"quay.io:443": {Endpoints: []string{"q.example.com"}},
	}}
	for _, tc := range []struct {
		ref  string
		want []string // where the reference is pulled from, in order
	}{
		{"nginx:1.27", []string{"http://127.0.0.1:5000/mirrored/nginx:1.27", "https://mirror.example.com/mirrored/nginx:1.27", "https://index.docker.io/library/nginx:1.27"}},
		{"docker.io/team/app@sha256:" + strings.Repeat("a", 64), []string{
			"http://127.0.0.1:5000/team/app@sha256:" + strings.Repeat("a", 64),
			"https://mirror.example.com/team/app@sha256:" + strings.Repeat("a", 64),
			"https://index.docker.io/team/app@sha256:" + strings.Repeat("a", 64)}},
		{"ghcr.io/o/app:1", []string{"https://ghcr.io/o/app:1"}},
		{"registry.example.com/app:1", []string{"https://any.example.com/app:1", "https://registry.example.com/app:1"}},
		{"quay.io:443/app:1", []string{"https://q.example.com/app:1", "https://quay.io:443/app:1"}},
	} {
		ref, err := ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range r.endpoints(ref.Context().Registry) {
			at, err := e.at(ref)
			if err != nil {
				t.Fatalf("%s at %s: %v", tc.ref, e.host, err)
			}
			got = append(got, at.Context().Scheme()+"://"+at.Context().RegistryStr()+"/"+at.Context().RepositoryStr()+map[bool]string{true: "@", false: ":"}[strings.HasPrefix(at.Identifier(), "sha256:")]+at.Identifier())
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s pulled from\n %v\nwant\n %v", tc.ref, got, tc.want)
		}
	}
	var none *Registries
	ref, _ := ParseReference("app:1")
	if e := none.endpoints(ref.Context().Registry); len(e) != 1 || e[0].host != name.DefaultRegistry {
		t.Errorf("no file: %+v", e)
	}
}

// TestPullThroughMirrorWithCredentials: a registry that is not reachable
// is served by its mirror (with a rewrite), which wants the registries
// file's credentials.
func TestPullThroughMirrorWithCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking with ownership needs root")
	}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); r.Method == http.MethodGet && (!ok || u != "puller" || p != "secret") {
			w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	mirror := strings.TrimPrefix(srv.URL, "http://")
	push(t, mirror+"/copies/app:1", image(t, layer(t, entry{name: "bin/", dir: true}, entry{name: "bin/app", body: "app"})))

	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	regs := &Registries{Mirrors: map[string]Mirror{
		"unreachable.invalid": {Endpoints: []string{"http://" + mirror}, Rewrite: map[string]string{"^team/(.*)": "copies/$1"}},
	}}
	// Without the credentials: the mirror refuses, the registry does not
	// resolve; both errors are told.
	_, err = s.Pull(context.Background(), "unreachable.invalid/team/app:1", PullOptions{Registries: regs})
	if err == nil || !IsUnauthorized(err) && !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("without credentials: %v", err)
	}
	if IsUnreachable(err) {
		t.Errorf("a mirror that answered made the pull unreachable: %v", err)
	}
	regs.Configs = map[string]RegistryConfig{mirror: {Auth: &authn.AuthConfig{Username: "puller", Password: "secret"}}}
	im, err := s.Pull(context.Background(), "unreachable.invalid/team/app:1", PullOptions{Registries: regs})
	if err != nil {
		t.Fatal(err)
	}
	// Filed under the reference asked for, not the mirror's.
	if im.Ref != "unreachable.invalid/team/app:1" || !strings.HasPrefix(im.RepoDigest(), "unreachable.invalid/team/app@sha256:") {
		t.Errorf("image = %+v", im)
	}
	if _, ok, _ := s.Get("unreachable.invalid/team/app:1"); !ok {
		t.Errorf("not in the store under its reference")
	}
}

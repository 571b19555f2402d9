package images

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// TestCredentialMatching: the credentials of the most specific Docker
// config key that matches a repository, as the kubelet matches pull
// secrets: an optional scheme, docker.io under its legacy names, a port
// matched exactly, "*" globs one label, a path matches the repository and
// what is under it.
func TestCredentialMatching(t *testing.T) {
	secret := func(auths string) []byte { return []byte(`{"auths": {` + auths + `}}`) }
	b64 := base64.StdEncoding.EncodeToString([]byte("legacy:pw"))
	c := &Credentials{}
	if err := c.AddDockerConfig(secret(`
		"https://index.docker.io/v1/": {"auth": "`+b64+`"},
		"registry.example.com": {"username": "host"},
		"registry.example.com/team": {"username": "team"},
		"registry.example.com:5000": {"username": "port"},
		"*.corp.example.com": {"username": "glob"},
		"http://plain.example.com/": {"username": "scheme"}`), false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ image, want string }{
		{"nginx:1.27", "legacy"},
		{"docker.io/library/nginx:1.27", "legacy"},
		{"registry.example.com/app:1", "host"},
		{"registry.example.com/team/app:1", "team"},
		{"registry.example.com/team:1", "team"},
		{"registry.example.com/teams/app:1", "host"},
		{"registry.example.com:5000/team/app:1", "port"},
		{"registry.example.com:5001/app:1", ""},
		{"a.corp.example.com/app:1", "glob"},
		{"a.b.corp.example.com/app:1", ""},
		{"corp.example.com/app:1", ""},
		{"plain.example.com/x:1", "scheme"},
		{"REGISTRY.example.com/app:1", "host"},
		{"other.example.com/app:1", ""},
	} {
		ref, err := ParseReference(tc.image)
		if err != nil {
			t.Fatal(err)
		}
		a, err := c.Resolve(ref.Context())
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Username; got != tc.want {
			if tc.want == "" && a == authn.Anonymous {
				continue
			}
			t.Errorf("%s: credentials of %q, want %q", tc.image, got, tc.want)
		}
	}

	// The older .dockercfg (the map alone) and bad secrets.
	old := &Credentials{}
	if err := old.AddDockerConfig([]byte(`{"registry.example.com": {"username": "old"}}`), true); err != nil || old.Empty() {
		t.Errorf(".dockercfg: %v", err)
	}
	if err := (&Credentials{}).AddDockerConfig([]byte(`not json`), false); err == nil {
		t.Errorf("a bad .dockerconfigjson was read")
	}
	// Pulls with the same credentials share one fetch; with others not.
	if c.Key() == old.Key() || c.Key() == "" || (&Credentials{}).Key() != "" {
		t.Errorf("keys: %q %q", c.Key(), old.Key())
	}
	// The registries file's credentials, docker.io under either name.
	r := &Registries{Configs: map[string]RegistryConfig{"docker.io": {Auth: &authn.AuthConfig{Username: "file"}}}}
	ref, _ := ParseReference("nginx")
	a, _ := r.Resolve(ref.Context())
	if cfg, _ := a.Authorization(); cfg.Username != "file" {
		t.Errorf("registries file for docker.io: %+v", cfg)
	}
}

package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Credentials are registry credentials by the key they are filed under in
// a Docker config ("registry.example.com", "registry.example.com/team",
// "*.example.com", "https://index.docker.io/v1/"), as the kubelet reads
// pull secrets. It is an authn.Keychain: a repository gets the
// credentials of the most specific key that matches it.
type Credentials struct {
	entries []credEntry
}

type credEntry struct {
	host, path string // host may hold a "*" glob per label
	auth       authn.AuthConfig
}

var _ authn.Keychain = (*Credentials)(nil)

// dockerConfig is a Secret's .dockerconfigjson ({"auths": {...}}) or the
// older .dockercfg (the map alone).
type dockerConfig struct {
	Auths map[string]authn.AuthConfig `json:"auths"`
}

// AddDockerConfig adds the credentials of a Secret of type
// kubernetes.io/dockerconfigjson (dockercfg false) or
// kubernetes.io/dockercfg (true).
func (c *Credentials) AddDockerConfig(data []byte, dockercfg bool) error {
	auths := map[string]authn.AuthConfig{}
	if dockercfg {
		if err := json.Unmarshal(data, &auths); err != nil {
			return fmt.Errorf("not a .dockercfg: %w", err)
		}
	} else {
		var dc dockerConfig
		if err := json.Unmarshal(data, &dc); err != nil {
			return fmt.Errorf("not a .dockerconfigjson: %w", err)
		}
		auths = dc.Auths
	}
	keys := make([]string, 0, len(auths))
	for k := range auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Add(k, auths[k])
	}
	return nil
}

// Add files credentials under a Docker config key.
func (c *Credentials) Add(key string, auth authn.AuthConfig) {
	host, p := parseCredKey(key)
	if host == "" {
		return
	}
	c.entries = append(c.entries, credEntry{host: host, path: p, auth: auth})
}

// Empty reports whether there are no credentials.
func (c *Credentials) Empty() bool { return c == nil || len(c.entries) == 0 }

// Key identifies the credentials (a hash), so that pulls with the same
// credentials can be shared and pulls with others are not.
func (c *Credentials) Key() string {
	if c.Empty() {
		return ""
	}
	h := sha256.New()
	for _, e := range c.entries {
		b, _ := json.Marshal(e.auth)
		fmt.Fprintf(h, "%s/%s=%s\n", e.host, e.path, b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// parseCredKey reads a Docker config key as the kubelet's credential
// provider does: an optional scheme, a host (index.docker.io's legacy
// URLs mean docker.io), an optional path.
func parseCredKey(key string) (host, p string) {
	k := strings.TrimSpace(key)
	if strings.Contains(k, "://") {
		u, err := url.Parse(k)
		if err != nil {
			return "", ""
		}
		k = u.Host + u.Path
	}
	k = strings.TrimSuffix(k, "/")
	host, p, _ = strings.Cut(k, "/")
	host = strings.ToLower(host)
	switch host {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		host = "index.docker.io"
		if p == "v1" || p == "v2" {
			p = ""
		}
	}
	return host, strings.TrimSuffix(p, "/")
}

// Resolve implements authn.Keychain.
func (c *Credentials) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if c.Empty() {
		return authn.Anonymous, nil
	}
	reg := strings.ToLower(target.RegistryStr())
	if reg == "docker.io" || reg == "registry-1.docker.io" {
		reg = "index.docker.io"
	}
	repo := ""
	if s := target.String(); strings.HasPrefix(s, target.RegistryStr()+"/") {
		repo = strings.TrimPrefix(s, target.RegistryStr()+"/")
	}
	best, bestLen := -1, -1
	for i, e := range c.entries {
		if !hostMatches(e.host, reg) {
			continue
		}
		if e.path != "" && repo != e.path && !strings.HasPrefix(repo, e.path+"/") {
			continue
		}
		if l := len(e.host) + len(e.path); l > bestLen {
			best, bestLen = i, l
		}
	}
	if best < 0 {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(c.entries[best].auth), nil
}

// hostMatches matches a host with a port exactly, and globs ("*.example.com")
// label by label, as the kubelet's credential matching does.
func hostMatches(pattern, host string) bool {
	if pattern == host {
		return true
	}
	ph, pport, _ := strings.Cut(pattern, ":")
	hh, hport, _ := strings.Cut(host, ":")
	if pport != hport {
		return false
	}
	pl, hl := strings.Split(ph, "."), strings.Split(hh, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if ok, _ := path.Match(pl[i], hl[i]); !ok {
			return false
		}
	}
	return true
}

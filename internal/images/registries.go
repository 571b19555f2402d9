package images

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	"quartet.dev/quartet/internal/datadir"
)

// Registries is the registries file, <data-dir>/registries.yaml, in the
// shape of k3s's: mirrors per registry (tried in order before the registry
// itself; "*" for every registry) and, per registry host, credentials and
// TLS settings.
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com"]
//	    rewrite: {"^library/(.*)": "mirrored/$1"}
//	configs:
//	  mirror.example.com:
//	    auth: {username: u, password: p}
//	    tls: {ca_file: /etc/ssl/mirror-ca.pem, insecure_skip_verify: false}
type Registries struct {
	Mirrors map[string]Mirror         `json:"mirrors,omitempty"`
	Configs map[string]RegistryConfig `json:"configs,omitempty"`

	transports sync.Map // host → http.RoundTripper
}

// Mirror lists the endpoints that serve a registry's images.
type Mirror struct {
	Endpoints []string `json:"endpoint,omitempty"`
	// Rewrite maps a regular expression over the repository path to its
	// replacement at the mirror.
	Rewrite map[string]string `json:"rewrite,omitempty"`
}

// RegistryConfig is how to talk to one registry host.
type RegistryConfig struct {
	Auth *authn.AuthConfig `json:"auth,omitempty"`
	TLS  *TLSConfig        `json:"tls,omitempty"`
}

// TLSConfig is a registry host's TLS settings.
type TLSConfig struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// LoadRegistries reads a registries file; a file that does not exist is
// an empty one. A file another user could have written is refused (it
// chooses what containers run, as root).
func LoadRegistries(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := datadir.CheckOwned(path); err != nil {
		return nil, err
	}
	var r Registries
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func (r *Registries) validate() error {
	for reg, m := range r.Mirrors {
		for _, e := range m.Endpoints {
			if _, err := parseEndpoint(e); err != nil {
				return fmt.Errorf("mirrors.%s: %w", reg, err)
			}
		}
		for re := range m.Rewrite {
			if _, err := regexp.Compile(re); err != nil {
				return fmt.Errorf("mirrors.%s.rewrite: %w", reg, err)
			}
		}
	}
	for host, c := range r.Configs {
		if c.TLS != nil {
			if _, err := c.TLS.config(); err != nil {
				return fmt.Errorf("configs.%s.tls: %w", host, err)
			}
		}
	}
	return nil
}

// endpoint is one place to pull from: a registry host, over HTTP or HTTPS.
type endpoint struct {
	host     string
	insecure bool // plain HTTP
	rewrite  map[string]string
}

func parseEndpoint(s string) (endpoint, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("endpoint %q: want http:// or https://", s)
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "v2" {
		return endpoint{}, fmt.Errorf("endpoint %q: a path other than /v2 is not supported", s)
	}
	if u.Host == "" {
		return endpoint{}, fmt.Errorf("endpoint %q: no host", s)
	}
	return endpoint{host: u.Host, insecure: u.Scheme == "http"}, nil
}

// endpoints are where an image of registry reg is pulled from, in order:
// its mirrors (or the "*" mirrors), then the registry itself.
func (r *Registries) endpoints(reg name.Registry) []endpoint {
	host := reg.RegistryStr()
	var out []endpoint
	if r != nil {
		key := host
		if host == name.DefaultRegistry {
			key = "docker.io"
		}
		m, ok := r.Mirrors[key]
		if !ok && key == "docker.io" {
			m, ok = r.Mirrors[name.DefaultRegistry]
		}
		if !ok {
			m = r.Mirrors["*"]
		}
		for _, s := range m.Endpoints {
			if e, err := parseEndpoint(s); err == nil && e.host != host {
				e.rewrite = m.Rewrite
				out = append(out, e)
			}
		}
	}
	return append(out, endpoint{host: host, insecure: reg.Scheme() == "http"})
}

// at is ref as served by the endpoint.
func (e endpoint) at(ref name.Reference) (name.Reference, error) {
	repo := ref.Context().RepositoryStr()
	for re, repl := range e.rewrite {
		if rx, err := regexp.Compile(re); err == nil && rx.MatchString(repo) {
			repo = rx.ReplaceAllString(repo, repl)
			break
		}
	}
	var opts []name.Option
	if e.insecure {
		opts = append(opts, name.Insecure)
	}
	full := e.host + "/" + repo
	if d, ok := ref.(name.Digest); ok {
		return name.NewDigest(full+"@"+d.DigestStr(), opts...)
	}
	return name.NewTag(full+":"+ref.Identifier(), opts...)
}

// Resolve implements authn.Keychain with the configs' credentials.
func (r *Registries) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if r == nil {
		return authn.Anonymous, nil
	}
	host := target.RegistryStr()
	c, ok := r.Configs[host]
	if !ok && host == name.DefaultRegistry {
		c, ok = r.Configs["docker.io"]
	}
	if !ok || c.Auth == nil {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(*c.Auth), nil
}

func (t *TLSConfig) config() (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the registries file asks for it
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// transport is the HTTP transport for a registry host: its TLS settings,
// and connection timeouts short enough that an unreachable registry is
// known as such in seconds.
func (r *Registries) transport(host string) http.RoundTripper {
	if r == nil {
		return defaultTransport
	}
	c, ok := r.Configs[host]
	if !ok || c.TLS == nil {
		return defaultTransport
	}
	if t, ok := r.transports.Load(host); ok {
		return t.(http.RoundTripper)
	}
	t := newTransport()
	if cfg, err := c.TLS.config(); err == nil {
		t.TLSClientConfig = cfg
	}
	r.transports.Store(host, t)
	return t
}

var defaultTransport = newTransport()

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

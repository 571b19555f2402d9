package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sessionTTL bounds a browser session; a new login URL starts another.
const sessionTTL = 24 * time.Hour

// auth keeps the one-time login tokens and the sessions they became. Both
// are kept as SHA-256 digests, so a map lookup reveals nothing about a
// secret's bytes.
type auth struct {
	cookie   string
	mu       sync.Mutex
	tokens   map[[32]byte]struct{}
	sessions map[[32]byte]time.Time
}

func newAuth(cookie string) *auth {
	return &auth{cookie: cookie, tokens: map[[32]byte]struct{}{}, sessions: map[[32]byte]time.Time{}}
}

func secret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// newToken mints a login token that works once.
func (a *auth) newToken() string {
	t := secret()
	a.mu.Lock()
	a.tokens[sha256.Sum256([]byte(t))] = struct{}{}
	a.mu.Unlock()
	return t
}

// redeem spends a login token and returns a new session id.
func (a *auth) redeem(token string) (string, bool) {
	k := sha256.Sum256([]byte(token))
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.tokens[k]; !ok || token == "" {
		return "", false
	}
	delete(a.tokens, k)
	s := secret()
	a.sessions[sha256.Sum256([]byte(s))] = time.Now().Add(sessionTTL)
	return s, true
}

// valid reports whether the request carries a live session cookie.
func (a *auth) valid(r *http.Request) bool {
	c, err := r.Cookie(a.cookie)
	if err != nil || c.Value == "" {
		return false
	}
	k := sha256.Sum256([]byte(c.Value))
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[k]
	if ok && time.Now().After(exp) {
		delete(a.sessions, k)
		return false
	}
	return ok
}

// loopbackHost refuses requests whose Host is not a loopback name or
// address: a page on another site that rebinds its name to 127.0.0.1
// reaches the port, but not with a Host this server accepts.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

package controlplane

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapiserver "k8s.io/apiserver/pkg/server"
)

// The node agents authenticate with bearer tokens that exist only in this
// process's memory: the apiserver (in the same process) knows each one as
// nodeUser(name) in nodeGroup, exactly the identity a client certificate
// would carry, so the Node authorizer and NodeRestriction treat the request
// as that node's. Tokens rather than certificates because client-go shares
// one transport (one HTTP/2 connection) among clients whose TLS settings are
// equal, and adds a bearer token above it: a thousand nodes cost one
// connection instead of a thousand TLS connections and their buffers on
// both ends. A token is never written anywhere; it is issued when a node
// agent starts, replaced when the same node starts again and revoked when
// the node is removed. Nothing outside this process can present one.

// nodeTokenPrefix marks quartet's node tokens, so other bearer tokens
// (service accounts) pass through untouched.
const nodeTokenPrefix = "quartet-node."

// nodeTokens is the apiserver's authenticator of the node agents' tokens.
type nodeTokens struct {
	mu      sync.RWMutex
	byToken map[string]user.Info
	byNode  map[string]string // node name → its current token
}

func newNodeTokens() *nodeTokens {
	return &nodeTokens{byToken: map[string]user.Info{}, byNode: map[string]string{}}
}

// issue returns a fresh token for node, replacing the node's earlier one.
func (t *nodeTokens) issue(node string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := nodeTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	u := &user.DefaultInfo{Name: nodeUser(node), Groups: []string{nodeGroup, user.AllAuthenticated}}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byToken, t.byNode[node])
	t.byToken[token] = u
	t.byNode[node] = token
	return token, nil
}

// revoke makes node's token unknown.
func (t *nodeTokens) revoke(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byToken, t.byNode[node])
	delete(t.byNode, node)
}

// AuthenticateRequest knows a request carrying one of the node tokens and
// leaves every other request to the apiserver's own authenticators.
func (t *nodeTokens) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(token, nodeTokenPrefix) {
		return nil, false, nil
	}
	t.mu.RLock()
	u, ok := t.byToken[token]
	t.mu.RUnlock()
	if !ok {
		return nil, false, nil
	}
	// As the apiserver's own token authenticators do: the token is not
	// passed on (to an aggregated API server, say).
	req.Header.Del("Authorization")
	return &authenticator.Response{User: u}, true, nil
}

// addNodeTokens puts tokens before the authenticators of each server of
// the apiserver's chain (the aggregator authenticates every request; the
// kube-apiserver's is also TokenReview's). A token is valid for the API's
// own audiences, as the static token file's are.
func addNodeTokens(tokens *nodeTokens, infos ...*genericapiserver.AuthenticationInfo) {
	for _, info := range infos {
		ours := authenticator.WrapAudienceAgnosticRequest(info.APIAudiences, tokens)
		theirs := info.Authenticator
		info.Authenticator = authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
			if resp, ok, err := ours.AuthenticateRequest(req); ok || err != nil {
				return resp, ok, err
			}
			return theirs.AuthenticateRequest(req)
		})
	}
}

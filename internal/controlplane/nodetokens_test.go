package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"quartet.dev/quartet/internal/pki"
)

func bearer(token string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/nodes", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// TestNodeTokens checks who each token is, that a node's new token ends
// its old one, that revocation ends it, and that other credentials are left
// to the apiserver's own authenticators.
func TestNodeTokens(t *testing.T) {
	tokens := newNodeTokens()
	t1, err := tokens.issue("node-1")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := tokens.issue("node-2")
	if err != nil {
		t.Fatal(err)
	}
	if t1 == t2 || !strings.HasPrefix(t1, nodeTokenPrefix) || len(t1) < len(nodeTokenPrefix)+40 {
		t.Fatalf("tokens %q, %q: want distinct, prefixed, 32 random bytes", t1, t2)
	}
	who := func(token string) string {
		t.Helper()
		req := bearer(token)
		resp, ok, err := tokens.AuthenticateRequest(req)
		if err != nil {
			t.Fatalf("token %q: %v", token, err)
		}
		if !ok {
			return ""
		}
		if req.Header.Get("Authorization") != "" {
			t.Errorf("%s's token left in the request", resp.User.GetName())
		}
		if !slices.Equal(resp.User.GetGroups(), []string{"system:nodes", user.AllAuthenticated}) {
			t.Errorf("%s's groups %v", resp.User.GetName(), resp.User.GetGroups())
		}
		return resp.User.GetName()
	}
	if got := who(t1); got != "system:node:node-1" {
		t.Errorf("node-1's token is %q", got)
	}
	if got := who(t2); got != "system:node:node-2" {
		t.Errorf("node-2's token is %q", got)
	}
	t1b, err := tokens.issue("node-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := who(t1); got != "" {
		t.Errorf("node-1's replaced token still authenticates as %q", got)
	}
	if got := who(t1b); got != "system:node:node-1" {
		t.Errorf("node-1's new token is %q", got)
	}
	tokens.revoke("node-2")
	if got := who(t2); got != "" {
		t.Errorf("node-2's revoked token still authenticates as %q", got)
	}
	for _, other := range []string{"", "eyJhbGciOiJSUzI1NiJ9.e30.sig", nodeTokenPrefix + "guessed", t1b[:len(t1b)-1]} {
		if got := who(other); got != "" {
			t.Errorf("token %q authenticates as %q", other, got)
		}
	}
}

// TestAddNodeTokens checks the apiserver's chain: node tokens first, within
// the API's audiences, and everything else to the authenticators it had.
func TestAddNodeTokens(t *testing.T) {
	tokens := newNodeTokens()
	token, err := tokens.issue("node-1")
	if err != nil {
		t.Fatal(err)
	}
	theirs := authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		if req.Header.Get("Authorization") == "Bearer sa-token" {
			return &authenticator.Response{User: &user.DefaultInfo{Name: "system:serviceaccount:default:default"}}, true, nil
		}
		return nil, false, errors.New("invalid bearer token")
	})
	info := genericapiserver.AuthenticationInfo{APIAudiences: authenticator.Audiences{"https://kubernetes.default.svc"}, Authenticator: theirs}
	addNodeTokens(tokens, &info)
	for _, tc := range []struct {
		token, audience, want string
	}{
		{token, "", "system:node:node-1"},
		{token, "https://kubernetes.default.svc", "system:node:node-1"},
		{token, "https://elsewhere", ""},
		{"sa-token", "", "system:serviceaccount:default:default"},
		{"nope", "", ""},
	} {
		req := bearer(tc.token)
		if tc.audience != "" {
			req = req.WithContext(authenticator.WithAudiences(req.Context(), authenticator.Audiences{tc.audience}))
		}
		resp, ok, _ := info.Authenticator.AuthenticateRequest(req)
		got := ""
		if ok {
			got = resp.User.GetName()
		}
		if got != tc.want {
			t.Errorf("token %.20q audience %q: %q, want %q", tc.token, tc.audience, got, tc.want)
		}
	}
}

// TestNodeClientsShareOneConnection checks what the tokens are for: many
// node clients, each authenticated as its own node, over one connection.
func TestNodeClientsShareOneConnection(t *testing.T) {
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue(pki.Leaf{CommonName: "kube-apiserver", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{CA: ca, cfg: Config{APIQPS: 1000, APIBurst: 1000}, nodeTokens: newNodeTokens()}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// As the apiserver: GET /api/v1/nodes/<name> answers the
		// requester's name in the Node's name.
		resp, ok, _ := c.nodeTokens.AuthenticateRequest(req)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: resp.User.GetName()}})
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*serving.TLS()}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c.Server = srv.URL

	clients := c.NodeClients()
	for i := range 50 {
		name := "node-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		client, err := clients.Client(name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n.Name != "system:node:"+name {
			t.Fatalf("%s's client is %q", name, n.Name)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 node clients opened %d connections, want 1", n)
	}
}

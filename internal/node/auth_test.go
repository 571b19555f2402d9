package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"quartet.dev/quartet/internal/pki"
)

// fakeReviews answers TokenReviews from a token → user map and
// SubjectAccessReviews from a user → allowed verbs on nodes/proxy map, and
// counts the reviews asked for.
type fakeReviews struct {
	mu      sync.Mutex
	tokens  map[string]string
	allowed map[string]bool
	sars    []authorizationv1.SubjectAccessReviewSpec
}

// client is a clientset whose apiserver is an HTTP server answering only
// the two reviews (the webhook clients need a real REST client).
func (f *fakeReviews) client(t *testing.T) kubernetes.Interface {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out any
		switch r.URL.Path {
		case "/apis/authentication.k8s.io/v1/tokenreviews":
			var tr authenticationv1.TokenReview
			if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if u, ok := f.tokens[tr.Spec.Token]; ok {
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: u}}
			}
			out = &tr
		case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
			var sar authorizationv1.SubjectAccessReview
			if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			f.sars = append(f.sars, sar.Spec)
			f.mu.Unlock()
			ra := sar.Spec.ResourceAttributes
			sar.Status.Allowed = f.allowed[sar.Spec.User] && ra != nil && ra.Resource == "nodes" && ra.Subresource == "proxy" && ra.Name == "node-1"
			out = &sar
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKubeletAuth(t *testing.T) {
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	peer := func(cn string, groups ...string) *tls.ConnectionState {
		is, err := ca.Issue(pki.Leaf{CommonName: cn, Organization: groups, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(is.TLS().Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	}
	rev := &fakeReviews{
		tokens:  map[string]string{"ops-token": "ops", "dev-token": "dev"},
		allowed: map[string]bool{"ops": true, "admin": true},
	}
	auth, err := newKubeletAuth(rev.client(t), ca.Pool(), []string{"kube-apiserver-kubelet-client"})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("credentials passed on to the handler")
		}
		_, _ = w.Write([]byte("served"))
	})
	h := auth.filter("node-1", ok)

	cases := map[string]struct {
		tls      *tls.ConnectionState
		token    string
		method   string
		wantCode int
		wantBody string
		wantSARs int
		wantVerb string
	}{
		"anonymous":                   {wantCode: 401, wantBody: "Unauthorized"},
		"unknown token":               {token: "nope", wantCode: 401, wantBody: "Unauthorized"},
		"the apiserver, no review":    {tls: peer("kube-apiserver-kubelet-client", "system:masters"), wantCode: 200, wantBody: "served"},
		"a token allowed nodes/proxy": {token: "ops-token", method: "POST", wantCode: 200, wantBody: "served", wantSARs: 1, wantVerb: "create"},
		"a token denied":              {token: "dev-token", wantCode: 403, wantBody: "Forbidden (user=dev, verb=get, resource=nodes, subresource(s)=[proxy])", wantSARs: 1, wantVerb: "get"},
		"another certificate allowed": {tls: peer("admin"), wantCode: 200, wantBody: "served", wantSARs: 1, wantVerb: "get"},
		"another certificate denied":  {tls: peer("system:node:node-2", "system:nodes"), wantCode: 403, wantBody: "user=system:node:node-2", wantSARs: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rev.mu.Lock()
			rev.sars = nil
			rev.mu.Unlock()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "/exec/default/web-0/c?command=true&output=1", nil)
			req.TLS = tc.tls
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.wantCode || !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d with %q", w.Code, w.Body.String(), tc.wantCode, tc.wantBody)
			}
			rev.mu.Lock()
			defer rev.mu.Unlock()
			if len(rev.sars) != tc.wantSARs {
				t.Fatalf("%d SubjectAccessReviews, want %d", len(rev.sars), tc.wantSARs)
			}
			if tc.wantVerb != "" && rev.sars[0].ResourceAttributes.Verb != tc.wantVerb {
				t.Errorf("review verb %q, want %q", rev.sars[0].ResourceAttributes.Verb, tc.wantVerb)
			}
		})
	}
}

func TestSubresource(t *testing.T) {
	for path, want := range map[string]string{
		"/exec/ns/p/c":          "proxy",
		"/containerLogs/ns/p/c": "proxy",
		"/portForward/ns/p":     "proxy",
		"/stats/summary":        "stats",
		"/logs/syslog":          "log",
		"/logsx":                "proxy",
		"/metrics":              "metrics",
		"/checkpoint/ns/p/c":    "checkpoint",
	} {
		if got := subresource(path); got != want {
			t.Errorf("subresource(%q) = %q, want %q", path, got, want)
		}
	}
}

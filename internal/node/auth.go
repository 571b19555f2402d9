package node

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// kubeletAuth decides who may use a node's kubelet API, as a kubelet with
// webhook authentication and authorization does: a client certificate signed
// by the cluster CA or a bearer token that passes a TokenReview names the
// user, and a SubjectAccessReview for the node's subresource (proxy for
// exec, attach, portForward, run and containerLogs) decides. Requests
// without credentials get 401. The apiserver's own client certificate
// (trusted, a member of system:masters) is allowed without a review.
type kubeletAuth struct {
	authn   authenticator.Request
	authz   authorizer.Authorizer
	trusted []string
}

// Cache lifetimes and retries are the kubelet's defaults
// (--authentication-token-webhook-cache-ttl, --authorization-webhook-cache-*).
const (
	tokenCacheTTL  = 2 * time.Minute
	allowCacheTTL  = 5 * time.Minute
	denyCacheTTL   = 30 * time.Second
	reviewTimeout  = 10 * time.Second
	reviewAttempts = 3
)

func newKubeletAuth(client kubernetes.Interface, cas *x509.CertPool, trusted []string) (*kubeletAuth, error) {
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: reviewAttempts}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:            client.AuthenticationV1(),
		TokenAccessReviewTimeout:           reviewTimeout,
		WebhookRetryBackoff:                &backoff,
		CacheTTL:                           tokenCacheTTL,
		ClientCertificateCAContentProvider: poolCA{cas},
	}.New()
	if err != nil {
		return nil, fmt.Errorf("kubelet API authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             allowCacheTTL,
		DenyCacheTTL:              denyCacheTTL,
		WebhookRetryBackoff:       &backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("kubelet API authorization: %w", err)
	}
	return &kubeletAuth{authn: authn, authz: authz, trusted: trusted}, nil
}

// subresource is the Node subresource a kubelet API path is authorized as
// (the kubelet's mapping; quartet serves only proxy ones and healthz).
func subresource(path string) string {
	for _, p := range []struct{ prefix, sub string }{{"/stats", "stats"}, {"/metrics", "metrics"}, {"/logs", "log"}, {"/checkpoint", "checkpoint"}} {
		if isSubpath(path, p.prefix) {
			return p.sub
		}
	}
	return "proxy"
}

func isSubpath(subpath, path string) bool {
	return subpath == path || (len(subpath) > len(path) && subpath[:len(path)] == path && subpath[len(path)] == '/')
}

func apiVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// filter wraps next with authentication and authorization for node.
func (k *kubeletAuth) filter(node string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger := klog.FromContext(r.Context())
		resp, ok, err := k.authn.AuthenticateRequest(r)
		if err != nil {
			logger.V(2).Info("Kubelet API request not authenticated", "node", node, "err", err)
		}
		if err != nil || !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		// The credentials have done their work: they are not passed on.
		r.Header.Del("Authorization")
		u := resp.User
		if k.isTrusted(r, u) {
			next.ServeHTTP(w, r)
			return
		}
		attrs := authorizer.AttributesRecord{
			User: u, Verb: apiVerb(r.Method), APIVersion: "v1", Resource: "nodes",
			Subresource: subresource(r.URL.Path), Name: node, ResourceRequest: true, Path: r.URL.Path,
		}
		decision, _, err := k.authz.Authorize(r.Context(), attrs)
		if err != nil {
			logger.Error(err, "Kubelet API authorization error", "node", node, "user", u.GetName())
			http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
				u.GetName(), attrs.Verb, attrs.Resource, attrs.Subresource), http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=[%s])",
				u.GetName(), attrs.Verb, attrs.Resource, attrs.Subresource), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isTrusted reports whether the request came with the apiserver's client
// certificate (the user was authenticated by it, not by a token).
func (k *kubeletAuth) isTrusted(r *http.Request, u user.Info) bool {
	if len(k.trusted) == 0 || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	cn := r.TLS.PeerCertificates[0].Subject.CommonName
	return cn == u.GetName() && slices.Contains(k.trusted, cn)
}

// poolCA offers a certificate pool as the CA provider the x509
// authenticator reads its verify options from.
type poolCA struct{ pool *x509.CertPool }

func (p poolCA) Name() string                             { return "cluster-ca" }
func (p poolCA) CurrentCABundleContent() []byte           { return nil }
func (p poolCA) AddListener(dynamiccertificates.Listener) {}
func (p poolCA) VerifyOptions() (x509.VerifyOptions, bool) {
	return x509.VerifyOptions{Roots: p.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true
}

var _ dynamiccertificates.CAContentProvider = poolCA{}

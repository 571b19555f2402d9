package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/component-base/metrics/legacyregistry"
)

// health answers the health endpoints: /healthz (alive: the process
// serves, and a leader renews its lease in time) and /readyz (the start-up
// checks passed; a leader's caches have synced).
type health struct {
	ready    atomic.Bool
	watchdog *leaderelection.HealthzAdaptor
	// leading, when set, reports whether this replica leads and its
	// controllers' caches have synced (nil: not leading).
	synced atomic.Pointer[func() bool]
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var err error
	switch r.URL.Path {
	case "/healthz", "/livez":
		if h.watchdog != nil {
			err = h.watchdog.Check(r)
		}
	case "/readyz":
		switch synced := h.synced.Load(); {
		case !h.ready.Load():
			err = errors.New("start-up checks not done")
		case synced != nil && !(*synced)():
			err = errors.New("leading, caches not synced yet")
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// serve runs srv on l until ctx is done.
func serve(ctx context.Context, srv *http.Server, l net.Listener, tlsOn bool) <-chan error {
	errc := make(chan error, 1)
	go func() {
		var err error
		if tlsOn {
			err = srv.ServeTLS(l, "", "")
		} else {
			err = srv.Serve(l)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return errc
}

// metricsHandler serves the process's metrics (Kubernetes' legacy registry:
// work queues, client requests, leader election, the controllers' own) to
// callers the apiserver authenticates (a bearer token, by TokenReview) and
// authorizes to get the non-resource URL /metrics (SubjectAccessReview), as
// kube-controller-manager's secure port does.
func metricsHandler(client kubernetes.Interface) (http.Handler, error) {
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:  client.AuthenticationV1(),
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      &backoff,
		CacheTTL:                 10 * time.Second,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("metrics authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             10 * time.Second,
		DenyCacheTTL:              10 * time.Second,
		WebhookRetryBackoff:       &backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("metrics authorization: %w", err)
	}
	metrics := legacyregistry.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		resp, ok, err := authn.AuthenticateRequest(r)
		if err != nil || !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		decision, reason, err := authz.Authorize(r.Context(), authorizer.AttributesRecord{
			User: resp.User, Verb: "get", Path: "/metrics", ResourceRequest: false,
		})
		if err != nil || decision != authorizer.DecisionAllow {
			msg := fmt.Sprintf("Forbidden: %s may not get /metrics", resp.User.GetName())
			if reason != "" {
				msg += ": " + reason
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		metrics.ServeHTTP(w, r)
	}), nil
}

// serverCert loads the metrics endpoint's certificate, or makes a
// self-signed one (as kube-controller-manager does without one).
func serverCert(certFile, keyFile string) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return tls.Certificate{}, errors.New("--metrics-cert-file and --metrics-key-file go together")
		}
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("quartet-controllers", nil, []string{"localhost"})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

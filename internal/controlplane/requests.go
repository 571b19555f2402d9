package controlplane

import (
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// requestsByUser counts API requests per authenticated user. Upstream's
// apiserver_request_total has no user label; benchmarks need one to compare
// the requests quartet's workload controllers make with upstream's, which
// run under the same service-account user names. It is served on the
// apiserver's /metrics like every other apiserver metric. resource is the
// resource and subresource ("pods", "statefulsets/status"), empty for
// requests that are not about a resource (discovery, /metrics); namespace
// is the request's namespace ("" for cluster-scoped and all-namespace
// requests), so that a benchmark can tell one scenario's requests from
// another's that is still settling. A cluster with many namespaces gets as
// many series per user and verb: this is a counter for a cluster one
// person runs, not a production apiserver.
var requestsByUser = metrics.NewCounterVec(&metrics.CounterOpts{
	Name:           "quartet_apiserver_requests_by_user_total",
	Help:           "API requests served, by authenticated user, verb, resource and namespace.",
	StabilityLevel: metrics.ALPHA,
}, []string{"user", "verb", "resource", "namespace"})

// failuresByUser counts the requests of requestsByUser that were answered
// with a status of 400 or more (a conflict is 409), when they end.
var failuresByUser = metrics.NewCounterVec(&metrics.CounterOpts{
	Name:           "quartet_apiserver_request_failures_by_user_total",
	Help:           "API requests answered with a status >= 400, by authenticated user, verb, resource, namespace and code.",
	StabilityLevel: metrics.ALPHA,
}, []string{"user", "verb", "resource", "namespace", "code"})

func init() { legacyregistry.MustRegister(requestsByUser, failuresByUser) }

type requestCounter struct{}

func newRequestCounter() *requestCounter { return &requestCounter{} }

// wrap counts each request that reaches the API handler, after
// authentication has put the user in the context: when it starts (so that
// a watch still open is counted) and, if it fails, when it ends.
func (*requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "<anonymous>"
		if u, ok := request.UserFrom(r.Context()); ok {
			name = u.GetName()
		}
		verb := strings.ToLower(r.Method)
		resource, namespace := "", ""
		if info, ok := request.RequestInfoFrom(r.Context()); ok {
			if info.Verb != "" {
				verb = info.Verb
			}
			if info.IsResourceRequest {
				namespace = info.Namespace
				resource = info.Resource
				if info.Subresource != "" {
					resource += "/" + info.Subresource
				}
			}
		}
		requestsByUser.WithLabelValues(name, verb, resource, namespace).Inc()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(responsewriter.WrapForHTTP1Or2(sw), r)
		if sw.code >= 400 {
			failuresByUser.WithLabelValues(name, verb, resource, namespace, strconv.Itoa(sw.code)).Inc()
		}
	})
}

// statusWriter remembers the status code a handler writes.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets responsewriter.WrapForHTTP1Or2 keep the inner writer's
// Flusher, CloseNotifier and Hijacker (watches and upgrades need them).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

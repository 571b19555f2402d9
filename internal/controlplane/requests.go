package controlplane

import (
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// requestsByUser counts API requests per authenticated user. Upstream's
// apiserver_request_total has no user label; benchmarks need one to compare
// the requests quartet's workload controllers make with upstream's, which
// run under the same service-account user names. It is served on the
// apiserver's /metrics like every other apiserver metric.
var requestsByUser = metrics.NewCounterVec(&metrics.CounterOpts{
	Name:           "quartet_apiserver_requests_by_user_total",
	Help:           "API requests served, by authenticated user and verb.",
	StabilityLevel: metrics.ALPHA,
}, []string{"user", "verb"})

func init() { legacyregistry.MustRegister(requestsByUser) }

type requestCounter struct{}

func newRequestCounter() *requestCounter { return &requestCounter{} }

// wrap counts each request that reaches the API handler, after
// authentication has put the user in the context.
func (*requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "<anonymous>"
		if u, ok := request.UserFrom(r.Context()); ok {
			name = u.GetName()
		}
		verb := strings.ToLower(r.Method)
		if info, ok := request.RequestInfoFrom(r.Context()); ok && info.Verb != "" {
			verb = info.Verb
		}
		requestsByUser.WithLabelValues(name, verb).Inc()
		h.ServeHTTP(w, r)
	})
}

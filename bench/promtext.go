package bench

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// RequestsMetric counts API requests by authenticated user and verb; quartet's
// apiserver serves it on /metrics.
const RequestsMetric = "quartet_apiserver_requests_by_user_total"

// WorkloadControllerUsers are the identities the five workload controllers
// use in both modes: their writes under upstream's controller service
// accounts, their informers' lists and watches under one user of their own.
var WorkloadControllerUsers = []string{
	"system:serviceaccount:kube-system:statefulset-controller",
	"system:serviceaccount:kube-system:daemon-set-controller",
	"system:serviceaccount:kube-system:job-controller",
	"system:serviceaccount:kube-system:cronjob-controller",
	"system:serviceaccount:kube-system:ttl-after-finished-controller",
	"quartet:workload-controllers",
}

// Sample is one line of a metric in the Prometheus text format.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// ParseSamples returns every sample of metric in the Prometheus text
// exposition format. Comments and other metrics are skipped; a malformed
// line of metric is an error.
func ParseSamples(text, metric string) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, metric) {
			continue
		}
		rest := line[len(metric):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ' && rest[0] != '\t') {
			continue // another metric whose name starts with this one
		}
		s, err := parseSample(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v: %q", n, err, line)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseSample parses `{k="v",...} value [timestamp]` or ` value [timestamp]`.
func parseSample(s string) (Sample, error) {
	smp := Sample{Labels: map[string]string{}}
	if s[0] == '{' {
		i := 1
		for {
			for i < len(s) && (s[i] == ' ' || s[i] == ',') {
				i++
			}
			if i >= len(s) {
				return smp, fmt.Errorf("unterminated label set")
			}
			if s[i] == '}' {
				i++
				break
			}
			eq := strings.IndexByte(s[i:], '=')
			if eq < 0 {
				return smp, fmt.Errorf("label without value")
			}
			name := strings.TrimSpace(s[i : i+eq])
			i += eq + 1
			if i >= len(s) || s[i] != '"' {
				return smp, fmt.Errorf("label %s: value not quoted", name)
			}
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i < len(s) {
					switch s[i] {
					case 'n':
						b.WriteByte('\n')
					default:
						b.WriteByte(s[i])
					}
					i++
					continue
				}
				b.WriteByte(c)
			}
			if !closed {
				return smp, fmt.Errorf("label %s: unterminated value", name)
			}
			smp.Labels[name] = b.String()
		}
		s = s[i:]
	}
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return smp, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return smp, fmt.Errorf("value: %v", err)
	}
	smp.Value = v
	return smp, nil
}

// RequestKey is one series of the apiserver's per-user counters: Code is
// "" for every request (RequestsMetric), or the status of the failed ones
// (FailuresMetric), e.g. "409" for conflicts.
type RequestKey struct {
	User, Verb, Resource, Namespace, Code string
}

// Requests are API requests by user, verb, resource (with subresource,
// "pods/binding"), namespace ("" for cluster-scoped and all-namespace
// requests) and, for failures, status code.
type Requests map[RequestKey]float64

// FailuresMetric counts requests answered with a status >= 400 by user,
// verb, resource and code.
const FailuresMetric = "quartet_apiserver_request_failures_by_user_total"

// ParseRequests reads RequestsMetric and FailuresMetric from the apiserver's
// /metrics.
func ParseRequests(text string) (Requests, error) {
	samples, err := ParseSamples(text, RequestsMetric)
	if err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("no %s in the metrics", RequestsMetric)
	}
	failures, err := ParseSamples(text, FailuresMetric)
	if err != nil {
		return nil, err
	}
	out := Requests{}
	for _, s := range append(samples, failures...) {
		k := RequestKey{User: s.Labels["user"], Verb: s.Labels["verb"], Resource: s.Labels["resource"],
			Namespace: s.Labels["namespace"], Code: s.Labels["code"]}
		out[k] += s.Value
	}
	return out, nil
}

// ByUser sums the requests (not the failures) by user.
func (r Requests) ByUser() RequestCounts {
	out := RequestCounts{}
	for k, v := range r {
		if k.Code == "" {
			out[k.User] += v
		}
	}
	return out
}

// Writes sums the requests that change objects (create, update, patch,
// delete, deletecollection) by user.
func (r Requests) Writes() RequestCounts {
	out := RequestCounts{}
	for k, v := range r {
		if k.Code == "" && IsWrite(k.Verb) {
			out[k.User] += v
		}
	}
	return out
}

// IsWrite tells whether verb changes objects.
func IsWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// In keeps the requests in namespace or in none (cluster-scoped, all
// namespaces, not about a resource): a scenario's own, without those of
// another scenario's namespace that is still settling.
func (r Requests) In(namespace string) Requests {
	out := Requests{}
	for k, v := range r {
		if k.Namespace == "" || k.Namespace == namespace {
			out[k] = v
		}
	}
	return out
}

// DeltaRequests is after minus before; series with no change are left out.
func DeltaRequests(before, after Requests) Requests {
	out := Requests{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// RequestCounts are API requests by user, summed over verbs.
type RequestCounts map[string]float64

// ParseRequestCounts reads RequestsMetric from the apiserver's /metrics, by
// user.
func ParseRequestCounts(text string) (RequestCounts, error) {
	r, err := ParseRequests(text)
	if err != nil {
		return nil, err
	}
	return r.ByUser(), nil
}

// Sum adds the counts of users.
func (rc RequestCounts) Sum(users []string) float64 {
	var n float64
	for _, u := range users {
		n += rc[u]
	}
	return n
}

// Delta is after minus before, by user; users with no change are left out.
func Delta(before, after RequestCounts) RequestCounts {
	out := RequestCounts{}
	for u, v := range after {
		if d := v - before[u]; d != 0 {
			out[u] = d
		}
	}
	return out
}

package bench

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const metricsText = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",verb="POST"} 12
# HELP quartet_apiserver_requests_by_user_total [ALPHA] API requests served, by authenticated user and verb.
# TYPE quartet_apiserver_requests_by_user_total counter
quartet_apiserver_requests_by_user_total{user="system:serviceaccount:kube-system:statefulset-controller",verb="create"} 50
quartet_apiserver_requests_by_user_total{user="system:serviceaccount:kube-system:statefulset-controller",verb="update"} 7
quartet_apiserver_requests_by_user_total{user="quartet:workload-controllers",verb="list"} 5
quartet_apiserver_requests_by_user_total{user="quartet:workload-controllers",verb="watch"} 5
quartet_apiserver_requests_by_user_total{user="system:kube-scheduler",verb="create"} 1e+03
quartet_apiserver_requests_by_user_total{user="we\"ird\\name, with {braces}",verb="get"} 2
quartet_apiserver_requests_by_user_total_extra{user="quartet:workload-controllers",verb="get"} 99
`

func TestParseSamples(t *testing.T) {
	got, err := ParseSamples(metricsText, "apiserver_request_total")
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{{Labels: map[string]string{"code": "201", "verb": "POST"}, Value: 12}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
}

func TestParseSamplesForms(t *testing.T) {
	tests := map[string]struct {
		text    string
		want    []Sample
		wantErr bool
	}{
		"no labels": {text: "m 3\n", want: []Sample{{Labels: map[string]string{}, Value: 3}}},
		"timestamp": {text: `m{a="b"} 4 1700000000000` + "\n", want: []Sample{{Labels: map[string]string{"a": "b"}, Value: 4}}},
		"spaces and trailing comma": {text: `m{ a="b", c="d", } 5`,
			want: []Sample{{Labels: map[string]string{"a": "b", "c": "d"}, Value: 5}}},
		"escaped newline":    {text: `m{a="x\ny"} 1`, want: []Sample{{Labels: map[string]string{"a": "x\ny"}, Value: 1}}},
		"other metric":       {text: "mm 3\nm_total 4\n", want: nil},
		"unterminated value": {text: `m{a="b} 1`, wantErr: true},
		"unquoted value":     {text: `m{a=b} 1`, wantErr: true},
		"no value":           {text: `m{a="b"}`, wantErr: true},
		"bad value":          {text: `m{a="b"} x`, wantErr: true},
		"unterminated set":   {text: `m{a="b"`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSamples(tc.text, "m")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestCounts(t *testing.T) {
	got, err := ParseRequestCounts(metricsText)
	if err != nil {
		t.Fatal(err)
	}
	want := RequestCounts{
		"system:serviceaccount:kube-system:statefulset-controller": 57,
		"quartet:workload-controllers":                             10,
		"system:kube-scheduler":                                    1000,
		`we"ird\name, with {braces}`:                               2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if n := got.Sum(WorkloadControllerUsers); n != 67 {
		t.Errorf("workload controllers' requests = %v, want 67 (the scheduler's are not theirs)", n)
	}
	if _, err := ParseRequestCounts("apiserver_request_total 1\n"); err == nil {
		t.Error("metrics without the per-user counter: no error")
	}
}

func TestDelta(t *testing.T) {
	before := RequestCounts{"a": 10, "b": 5, "gone": 1}
	after := RequestCounts{"a": 15, "b": 5, "new": 3, "gone": 1}
	want := RequestCounts{"a": 5, "new": 3}
	if diff := cmp.Diff(want, Delta(before, after)); diff != "" {
		t.Errorf("delta (-want +got):\n%s", diff)
	}
}

const detailedText = `quartet_apiserver_requests_by_user_total{namespace="web",resource="pods",user="sts",verb="create"} 100
quartet_apiserver_requests_by_user_total{namespace="web",resource="statefulsets/status",user="sts",verb="update"} 10
quartet_apiserver_requests_by_user_total{namespace="cron",resource="events",user="job",verb="create"} 20
quartet_apiserver_requests_by_user_total{namespace="",resource="pods",user="informers",verb="watch"} 3
quartet_apiserver_request_failures_by_user_total{code="409",namespace="web",resource="statefulsets/status",user="sts",verb="update"} 2
`

func TestParseRequestsByNamespaceAndWrites(t *testing.T) {
	r, err := ParseRequests(detailedText)
	if err != nil {
		t.Fatal(err)
	}
	conflicts := r[RequestKey{User: "sts", Verb: "update", Resource: "statefulsets/status", Namespace: "web", Code: "409"}]
	if conflicts != 2 {
		t.Errorf("conflicts = %v, want 2", conflicts)
	}
	// Failures are not requests twice; another namespace's are left out.
	if diff := cmp.Diff(RequestCounts{"sts": 110, "informers": 3}, r.In("web").ByUser()); diff != "" {
		t.Errorf("requests in web (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(RequestCounts{"sts": 110, "job": 20}, r.Writes()); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	out := FormatRequests(r, "web")
	for _, want := range []string{"create pods", "update statefulsets/status -> 409", "create events (namespace cron, not counted)"} {
		if !strings.Contains(out, want) {
			t.Errorf("FormatRequests lacks %q:\n%s", want, out)
		}
	}
}

func TestMakeBreakdown(t *testing.T) {
	runs := map[Mode][]Run{
		ModeQuartet: {
			{CPUByComponent: map[string]float64{"apiserver": 2, "etcd": 1}, Writes: RequestCounts{"sts": 110}},
			{CPUByComponent: map[string]float64{"apiserver": 4}, Writes: RequestCounts{"sts": 130}},
			{CPUByComponent: map[string]float64{"apiserver": 3, "etcd": 3}, Writes: RequestCounts{"sts": 120}},
		},
		ModeUpstream: {{Values: map[string]float64{}}},
	}
	b := MakeBreakdown(100, runs)
	if b == nil {
		t.Fatal("no breakdown")
	}
	want := map[string]float64{"apiserver": 3, "etcd": 1} // etcd: median of 1, 0, 3
	if diff := cmp.Diff(want, b.CPUSeconds[ModeQuartet]); diff != "" {
		t.Errorf("CPU (-want +got):\n%s", diff)
	}
	if got := b.WritesPerPod[ModeQuartet]["sts"]; got != 1.2 {
		t.Errorf("writes per pod = %v, want 1.2", got)
	}
	if _, ok := b.CPUSeconds[ModeUpstream]; ok {
		t.Error("upstream measured nothing, yet has a CPU breakdown")
	}
	var text strings.Builder
	RenderBreakdowns(&text, []Row{{Scenario: "S", Breakdown: b}})
	if !strings.Contains(text.String(), "apiserver") || !strings.Contains(text.String(), "1.20") {
		t.Errorf("rendered:\n%s", text.String())
	}
	if MakeBreakdown(10, map[Mode][]Run{ModeQuartet: {{}}}) != nil {
		t.Error("a breakdown from runs that measured nothing")
	}
}

package control

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/pprof/profile"
)

func TestCPUProfile(t *testing.T) {
	mux := routes(nil, nil)
	for _, bad := range []string{"", "seconds=0", "seconds=x", "seconds=601"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/cpu?"+bad, nil))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET /debug/cpu?%s: %d, want 400", bad, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/cpu?seconds=1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /debug/cpu?seconds=1: %d %s", rec.Code, rec.Body)
	}
	p, err := profile.Parse(rec.Body)
	if err != nil {
		t.Fatalf("not a pprof profile: %v", err)
	}
	if len(p.SampleType) == 0 || p.SampleType[len(p.SampleType)-1].Type != "cpu" {
		t.Fatalf("sample types %v, want cpu", p.SampleType)
	}
}

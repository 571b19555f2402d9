package cronnext

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"quartet.dev/quartet/internal/manifest"
	"quartet.dev/quartet/internal/prose"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestRenderGolden prints reports for the manifests in testdata and compares
// them with the .golden files next to them. Run with -update to accept a
// change, then read the diff.
func TestRenderGolden(t *testing.T) {
	cases := map[string]struct {
		manifest string
		from     string
		count    int
		local    string
	}{
		"db-backup":               {manifest: "db-backup.yaml", from: "2026-05-19T10:00:00Z", count: 5, local: "Europe/Berlin"},
		"every-minute-allow":      {manifest: "every-minute-allow.yaml", from: "2026-05-19T10:00:30Z", count: 3, local: "Europe/Berlin"},
		"no-safeguards":           {manifest: "no-safeguards.yaml", from: "2026-05-22T12:00:00Z", count: 4, local: "America/Los_Angeles"},
		"new-york":                {manifest: "new-york.yaml", from: "2026-03-07T12:00:00Z", count: 6, local: "Asia/Seoul"},
		"every-90m":               {manifest: "every-90m.yaml", from: "2026-05-19T10:00:20Z", count: 3, local: "UTC"},
		"suspended-zero-deadline": {manifest: "suspended-zero-deadline.yaml", from: "2026-10-24T22:30:00Z", count: 4, local: "Europe/Berlin"},
		"multi":                   {manifest: "multi.yaml", from: "2026-05-19T10:00:00Z", count: 4, local: "Europe/Berlin"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", tc.manifest)
			cjs, err := manifest.LoadCronJobs(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			cj, err := manifest.PickCronJob(cjs, "", path)
			if err != nil {
				t.Fatal(err)
			}
			from, err := time.Parse(time.RFC3339, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Next(cj, from, tc.count, mustZone(t, tc.local))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := r.Render(&out); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run the test with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	got := prose.Wrap("one two three four five", "  ! ", "    ", 14)
	want := "  ! one two\n    three four\n    five\n"
	if got != want {
		t.Errorf("wrap = %q, want %q", got, want)
	}
	if long := prose.Wrap(strings.Repeat("x", 30), "> ", "  ", 10); long != "> "+strings.Repeat("x", 30)+"\n" {
		t.Errorf("a word longer than the width = %q", long)
	}
}

package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var testMachine = Machine{CPUs: 2, CPUModel: "Test CPU", MemoryGB: 24, GoVersion: "go1.26.8", Kernel: "Linux 6.1",
	LoadStart: 1.5, LoadEnd: 2.5, Date: "2026-11-27T00:00:00Z", Command: "make bench"}

func run(values map[string]float64, api, cpu, ceiling float64) Run {
	r := NewRun()
	r.Values, r.APIRequests, r.CPUSeconds, r.Ceiling = values, api, cpu, ceiling
	return r
}

// testRows are three scenarios: one with a ceiling, one that failed a
// round, one measured in quartet mode only.
func testRows() []Row {
	nan := math.NaN()
	var rows []Row
	rows = append(rows, Aggregate("sts-parallel", []Metric{
		{Key: "created", Name: "StatefulSet Parallel 0→1000: all created", Unit: "s", VsCeiling: true,
			Targets: []Target{RatioAtMost(1, "ratio <= 1"), CeilingAtLeast(0.8), APIRatioAtMost(1)}},
		{Key: "ready", Name: "StatefulSet Parallel 0→1000: all Ready", Unit: "s", Targets: []Target{RatioAtMost(1, "ratio <= 1")}},
	}, map[Mode][]Run{
		ModeQuartet: {
			run(map[string]float64{"created": 5, "ready": 9}, 1100, 1.5, 4),
			run(map[string]float64{"created": 4, "ready": 8}, 1000, 1.25, 4.2),
			run(map[string]float64{"created": 6, "ready": 10}, 1050, 2, 3.8),
		},
		ModeUpstream: {
			run(map[string]float64{"created": 8, "ready": 12}, 2000, 3, 4.1),
			run(map[string]float64{"created": 10, "ready": 16}, 2100, 2.5, 3.9),
			run(map[string]float64{"created": 9, "ready": 14}, 2050, 2.75, 4),
		},
	}, testMachine)...)
	failedRun := NewRun()
	failedRun.Err = "waiting for all Ready: context deadline exceeded"
	rows = append(rows, Aggregate("ds-node-add", []Metric{
		{Key: "running", Name: "node added: its pod Running", Unit: "ms",
			Targets: []Target{QuartetAtMost(300, "< 300 ms"), RatioAtMost(1, "ratio <= 1")}},
	}, map[Mode][]Run{
		ModeQuartet:  {run(map[string]float64{"running": 350}, 9, 0.01, nan), failedRun},
		ModeUpstream: {run(map[string]float64{"running": 250}, 8, 0.02, nan), run(map[string]float64{"running": 260}, 8, 0.02, nan)},
	}, testMachine)...)
	rows = append(rows, Aggregate("cronjob", []Metric{
		{Key: "all", Name: "1000 CronJobs: last Job", Unit: "ms", VsCeiling: true},
	}, map[Mode][]Run{
		ModeQuartet:  {run(map[string]float64{"all": 4000}, 5000, 1, 2)},
		ModeUpstream: {run(map[string]float64{"all": 8000}, 5000, 1, 2)},
	}, testMachine)...)
	rows = append(rows, Aggregate("node-scale", []Metric{
		{Key: "rss", Name: "1000 sim nodes + 10000 sim pods: resident memory", Unit: "MB",
			Targets: []Target{QuartetAtMost(2048, "< 2 GB")}, Note: "quartet mode only"},
	}, map[Mode][]Run{ModeQuartet: {run(map[string]float64{"rss": 1536}, 0, 0.5, nan)}}, testMachine)...)
	return rows
}

func TestAggregate(t *testing.T) {
	rows := testRows()
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	p := func(x float64) *float64 { return &x }
	created := rows[0]
	want := Row{
		ID: "sts-parallel/created", Scenario: "StatefulSet Parallel 0→1000: all created", Unit: "s",
		Quartet: p(5), Upstream: p(9), Ratio: p(5.0 / 9),
		APIRequestsQuartet: p(1050), APIRequestsUpstream: p(2050), APIRequestsRatio: p(1050.0 / 2050),
		CPUSecondsQuartet: p(1.5), CPUSecondsUpstream: p(2.75),
		// The ceiling pools both modes' runs: median of 3.8 3.9 4 4 4.1 4.2.
		Ceiling: p(4), CeilingFraction: p(0.8), CeilingFractionUpstream: p(4.0 / 9),
		Rounds: 3, SamplesQuartet: []float64{5, 4, 6}, SamplesUpstream: []float64{8, 10, 9},
		Targets: []TargetResult{{Text: "ratio <= 1", Met: p2b(true), Got: "ratio 0.556"},
			{Text: ">= 80% of the bare-client ceiling", Met: p2b(true), Got: "80.0%"},
			{Text: "API requests ratio <= 1", Met: p2b(true), Got: "1050 against 2050"}},
		Machine: testMachine,
	}
	if diff := cmp.Diff(want, created, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if rows[1].Ceiling != nil || rows[1].CeilingFraction != nil {
		t.Errorf("a metric not compared with the ceiling has one: %v", *rows[1].CeilingFraction)
	}

	added := rows[2]
	if got := *added.Quartet; got != 350 {
		t.Errorf("the failed round counted: quartet median %v, want 350", got)
	}
	if added.Rounds != 2 || len(added.Errors) != 1 || !strings.Contains(added.Errors[0], "quartet run 2: waiting") {
		t.Errorf("rounds %d, errors %q: want 2 rounds and the quartet run's error", added.Rounds, added.Errors)
	}
	if m := added.Targets[0].Met; m == nil || *m {
		t.Errorf("350 ms met the < 300 ms target")
	}

	cron := rows[3]
	if cron.Ceiling == nil || *cron.Ceiling != 2000 || *cron.CeilingFraction != 0.5 {
		t.Errorf("a ceiling of 2 s against 4000 ms: ceiling %v ms, fraction %v, want 2000 ms and 0.5", val(cron.Ceiling), val(cron.CeilingFraction))
	}

	scale := rows[4]
	if scale.Upstream != nil || scale.Ratio != nil || scale.APIRequestsRatio != nil {
		t.Errorf("a quartet-only row has upstream numbers: %+v", scale)
	}
	if m := scale.Targets[0].Met; m == nil || !*m {
		t.Errorf("1536 MB did not meet < 2 GB")
	}
}

func p2b(b bool) *bool { return &b }

// A ratio printed as the bound (0.90) can still miss it: the verdict
// says the figure it checked.
func TestTargetSaysWhatItChecked(t *testing.T) {
	r := Row{Ratio: func() *float64 { x := 0.9008; return &x }()}
	tg := RatioAtMost(0.9, "ratio <= 0.9")
	if m := tg.Check(r); m == nil || *m {
		t.Fatalf("0.9008 met ratio <= 0.9")
	}
	if got := tg.Got(r); got != "ratio 0.901" {
		t.Errorf("Got = %q, want ratio 0.901", got)
	}
	if got := (TargetResult{Text: "ratio <= 0.9", Got: "ratio 0.901"}).verdictText(); got != "ratio <= 0.9 — ratio 0.901" {
		t.Errorf("verdict %q", got)
	}
}

func TestTargetsWithoutData(t *testing.T) {
	var r Row
	for _, tg := range []Target{RatioAtMost(1, ""), APIRatioAtMost(1), QuartetAtMost(1, ""), CeilingAtLeast(0.8)} {
		if got := tg.Check(r); got != nil {
			t.Errorf("%q on an empty row = %v, want not measured", tg.Text, *got)
		}
	}
}

func TestRenderTable(t *testing.T) {
	var b bytes.Buffer
	RenderTable(&b, testRows())
	golden(t, "table.txt", b.Bytes())
}

func TestRenderMarkdown(t *testing.T) {
	var b bytes.Buffer
	RenderMarkdown(&b, testRows())
	b.WriteString("\n")
	RenderTargetsMarkdown(&b, testRows())
	golden(t, "table.md", b.Bytes())
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results", "latest.json")
	rows := testRows()
	if err := WriteJSON(path, rows); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "latest.json", b)

	// The fields the issue asks for are there in every object, null when
	// not measured.
	var objs []map[string]any
	if err := json.Unmarshal(b, &objs); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		for _, k := range []string{"scenario", "unit", "quartet", "upstream", "ratio", "api_requests_ratio",
			"api_requests_quartet", "api_requests_upstream", "cpu_seconds_quartet", "cpu_seconds_upstream",
			"ceiling_fraction", "rounds", "machine"} {
			if _, ok := o[k]; !ok {
				t.Errorf("%s: no %q", o["id"], k)
			}
		}
	}
	if objs[4]["upstream"] != nil || objs[4]["ratio"] != nil {
		t.Errorf("quartet-only row: upstream %v, ratio %v, want null", objs[4]["upstream"], objs[4]["ratio"])
	}
	var back []Row
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rows, back); diff != "" {
		t.Errorf("round trip (-wrote +read):\n%s", diff)
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.json")
	if err := WriteJSON(path, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("no rows wrote %q, want []", b)
	}
}

func TestWriteChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latest.png")
	if err := WriteChart(path, testRows(), "test"); err != nil {
		t.Fatal(err)
	}
	checkChart(t, path)
	if err := WriteChart(path, testRows()[4:], "test"); err == nil {
		t.Error("a chart of rows without ratios: no error")
	}
}

func TestWriteBreakdownChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latest-breakdown.png")
	rows := []Row{{Scenario: "a Job", Breakdown: &Breakdown{Pods: 100, CPUSeconds: map[Mode]map[string]float64{
		ModeQuartet:  {"kube-apiserver": 2, "etcd": 0.5, "workload controllers": 0.2, "nodes": 0.3, "web UI": 0.1, "kube-scheduler": 0.2, "Go runtime (GC)": 0.4, "kube-controller-manager": 0.1, "cluster DNS": 0.01},
		ModeUpstream: {"kube-apiserver": 2.1, "etcd": 0.5, "workload controllers": 0.3},
	}}}}
	if err := WriteBreakdownChart(path, rows, "test"); err != nil {
		t.Fatal(err)
	}
	checkChart(t, path)
	if err := WriteBreakdownChart(path, testRows(), "test"); err == nil {
		t.Error("a chart of rows without breakdowns: no error")
	}
}

// checkChart fails t unless path is a PNG large enough to read.
func checkChart(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 200 {
		t.Errorf("chart is %v, too small to read", b)
	}
}

func TestPick(t *testing.T) {
	a := &Scenario{ID: "a", Estimate: 20 * time.Second}
	b := &Scenario{ID: "b", Estimate: 5 * time.Second}
	c := &Scenario{ID: "c", Estimate: time.Second, Follows: "a"}
	minute := &Scenario{ID: "cron", AtMinute: true}
	est := func(s *Scenario) time.Duration { return s.Estimate }
	tests := map[string]struct {
		pending []*Scenario
		done    map[string]bool
		waiting bool
		left    time.Duration
		want    string
	}{
		"in order":                         {pending: []*Scenario{a, b}, want: "a"},
		"the minute scenario's setup":      {pending: []*Scenario{minute, a}, want: "cron"},
		"skip what does not fit":           {pending: []*Scenario{a, b}, waiting: true, left: 10 * time.Second, want: "b"},
		"nothing fits":                     {pending: []*Scenario{a, b}, waiting: true, left: 7 * time.Second, want: ""},
		"fits with 3 s to spare":           {pending: []*Scenario{b}, waiting: true, left: 8 * time.Second, want: "b"},
		"prerequisite not run":             {pending: []*Scenario{c, b}, want: "b"},
		"prerequisite run":                 {pending: []*Scenario{c, b}, done: map[string]bool{"a": true}, want: "c"},
		"only an unmet prerequisite":       {pending: []*Scenario{c}, want: ""},
		"no second minute while one waits": {pending: []*Scenario{minute}, waiting: true, left: time.Minute, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			done := tc.done
			if done == nil {
				done = map[string]bool{}
			}
			got := ""
			if i := pick(tc.pending, done, tc.waiting, tc.left, est); i >= 0 {
				got = tc.pending[i].ID
			}
			if got != tc.want {
				t.Errorf("pick = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestModeOrder(t *testing.T) {
	both := []*Scenario{{ID: "x"}}
	only := []*Scenario{{ID: "y", QuartetOnly: true}}
	if diff := cmp.Diff([]Mode{ModeQuartet, ModeUpstream}, modeOrder(0, both)); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]Mode{ModeUpstream, ModeQuartet}, modeOrder(1, both)); diff != "" {
		t.Errorf("the order does not swap in the next round: %s", diff)
	}
	if diff := cmp.Diff([]Mode{ModeQuartet}, modeOrder(1, only)); diff != "" {
		t.Errorf("quartet-only session: %s", diff)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bench -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestGist(t *testing.T) {
	out := "quartet up exited before ready (exit status 2):\n  etcd  embedded  0.4s\nfatal error: concurrent map iteration and map write\n\ngoroutine 1 [running]:\nmain.main()\n"
	want := "quartet up exited before ready (exit status 2): | fatal error: concurrent map iteration and map write"
	if got := gist(out); got != want {
		t.Errorf("gist = %q, want %q", got, want)
	}
}

// The node agents' identities are one row of the writes table.
func TestBreakdownNodeAgentsTogether(t *testing.T) {
	b := &Breakdown{Pods: 10, WritesPerPod: map[Mode]map[string]float64{
		ModeQuartet:  {"system:node:node-1": 0.25, "system:node:node-2": 0.5, "system:kube-scheduler": 2},
		ModeUpstream: {"system:node:node-1": 0.5, "system:kube-scheduler": 2},
	}}
	_, writes, _ := breakdownLines(b)
	want := [][]string{
		{"system:kube-scheduler", "2.00", "2.00"},
		{"system:node:* (the node agents, 2 identities)", "0.75", "0.50"},
		{"all", "2.75", "2.50"},
	}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Errorf("writes table (-want +got):\n%s", diff)
	}
}

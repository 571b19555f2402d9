package explain

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden with the current output")

// testNow is the instant golden output is computed at: a Tuesday in May,
// so the coming year holds both daylight-saving changes.
var testNow = time.Date(2026, 5, 19, 10, 0, 0, 0, time.UTC)

func testDeps() Deps {
	return Deps{
		Now:   func() time.Time { return testNow },
		Local: func() *time.Location { return time.UTC },
		Client: func(string) (kubernetes.Interface, string, error) {
			panic("no cluster in offline tests")
		},
	}
}

// run runs `quartet explain args...` and returns its output and exit status.
func run(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := Command(testDeps())
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(bytes.NewBufferString(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	code := 0
	if err != nil {
		e, ok := err.(*ExitError)
		if !ok {
			t.Fatalf("explain %v: %v", args, err)
		}
		code = e.Code
	}
	return out.String(), code
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

func TestExamplesGolden(t *testing.T) {
	// Relative paths, so the golden file does not depend on the checkout.
	t.Chdir(filepath.Join("..", ".."))
	out, code := run(t, "", "examples/")
	t.Chdir(filepath.Join("internal", "explain"))
	golden(t, "examples.txt", out)
	if code != ExitOK {
		t.Errorf("exit status %d on the chapter's own manifests, want 0", code)
	}
}

// TestCorpusGolden runs explain over the corpus: a broken variant of the
// chapter's manifests for every rule, a clean file, and an unreadable one.
func TestCorpusGolden(t *testing.T) {
	out, code := run(t, "", "testdata/corpus")
	golden(t, "corpus.txt", out)
	if code != ExitUnreadable {
		t.Errorf("exit status %d, want %d (unreadable.yaml)", code, ExitUnreadable)
	}
	js, _ := run(t, "", "-o", "json", "testdata/corpus")
	golden(t, "corpus.json", js)
}

// TestEveryRuleHasACorpusFile checks that testdata/corpus/<id>.yaml exists
// for every rule and that the rule fires on it.
func TestEveryRuleHasACorpusFile(t *testing.T) {
	for _, rule := range Rules() {
		t.Run(rule.ID, func(t *testing.T) {
			path := filepath.Join("testdata", "corpus", rule.ID+".yaml")
			js, _ := run(t, "", "-o", "json", path)
			var r Report
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatalf("%s: %v\n%s", path, err, js)
			}
			fired := 0
			for _, o := range r.Objects {
				for _, f := range o.Findings {
					if f.Rule == rule.ID {
						fired++
						if f.Severity != rule.Severity || f.Message == "" || f.Fix == "" || f.Reference != rule.Reference {
							t.Errorf("finding %+v does not carry the rule's severity, reference, a message and a fix", f)
						}
					}
				}
			}
			if fired == 0 {
				t.Errorf("%s does not fire on %s:\n%s", rule.ID, path, js)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	backup, err := os.ReadFile(filepath.Join("..", "..", "examples", "chapter", "db-backup-cronjob.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	noDeadline := strings.Replace(string(backup), "  startingDeadlineSeconds: 300\n", "", 1)
	cases := map[string]struct {
		stdin    string
		args     []string
		wantCode int
		wantOut  []string
	}{
		"stdin": {stdin: string(backup), args: []string{"-"}, wantCode: ExitOK,
			wantOut: []string{"<stdin>: CronJob db-backup: interchangeable, not per node, runs to completion periodically → daily 03:00 Asia/Seoul = 18:00 UTC"}},
		"a warning passes": {stdin: noDeadline, args: []string{"-"}, wantCode: ExitOK, wantOut: []string{"warning cronjob-no-starting-deadline"}},
		"--strict fails on a warning": {stdin: noDeadline, args: []string{"--strict", "-"}, wantCode: ExitFindings,
			wantOut: []string{"1 object: 0 errors, 1 warning, 1 note"}},
		"--strict passes notes": {stdin: string(backup), args: []string{"--strict", "-"}, wantCode: ExitOK},
		"an error fails":        {args: []string{"testdata/corpus/cronjob-never-fires.yaml"}, wantCode: ExitFindings, wantOut: []string{"error cronjob-never-fires"}},
		"a missing file":        {args: []string{"testdata/absent.yaml"}, wantCode: ExitUnreadable, wantOut: []string{"cannot read: stat testdata/absent.yaml: no such file or directory"}},
		"nothing in the input":  {stdin: "# only a comment\n", args: []string{"-"}, wantCode: ExitUnreadable, wantOut: []string{"-: cannot read: no objects found"}},
		"the rules":             {args: []string{"--rules"}, wantCode: ExitOK, wantOut: []string{"ID  ", "SEVERITY", "cronjob-no-starting-deadline"}},
		"no input":              {wantCode: ExitUnreadable, wantOut: nil},
		"bad -o":                {args: []string{"-o", "yaml", "x"}, wantCode: ExitUnreadable},
		"bad flag":              {args: []string{"--frobnicate"}, wantCode: ExitUnreadable},
		"files and --live":      {args: []string{"--live", "x"}, wantCode: ExitUnreadable},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, code := run(t, tc.stdin, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d\n%s", code, tc.wantCode, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	out, code := run(t, "", "-o", "json", "testdata/corpus/cronjob-no-starting-deadline.yaml")
	if code != ExitOK {
		t.Fatalf("exit status %d", code)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	want := Counts{Objects: 1, Warnings: 1}
	if r.Counts != want || len(r.Objects) != 1 || r.Objects[0].Controller != "CronJob" || r.Objects[0].Findings[0].Rule != "cronjob-no-starting-deadline" {
		t.Errorf("report %+v", r)
	}
}

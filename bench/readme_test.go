package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	doc := "# quartet\n\nbefore\n\n" + ReadmeBegin + "\nan old table\n" + ReadmeEnd + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := testRows()
	if err := UpdateReadme(path, rows); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"# quartet\n\nbefore\n\n" + ReadmeBegin + "\nThe latest full run, 2026-11-27, command `make bench`, on 2 CPUs (Test CPU)",
		"| StatefulSet Parallel 0→1000: all created | s | 5.00 | 9.00 | 0.56 | 1050 / 2050 | 80% |",
		"| 1000 sim nodes + 10000 sim pods: resident memory | MB | 1536 | - | - | 0 / - | - |",
		"7 targets: 5 met, 2 missed, 0 not measured",
		"- node added: its pod Running: < 300 ms — 350 ms\n",
		"\n" + ReadmeEnd + "\n\nafter\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "an old table") {
		t.Errorf("the old table is still there:\n%s", got)
	}
	// Once more from the same rows: the same file.
	if err := UpdateReadme(path, rows); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != got {
		t.Errorf("a second update changed the README:\n%s", again)
	}
	if _, err := ReplaceReadme([]byte("no markers\n"), rows); err == nil {
		t.Error("a README without the markers was rewritten")
	}
}

func TestReadJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latest.json")
	rows := testRows()
	if err := WriteJSON(path, rows); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(rows) || back[0].Scenario != rows[0].Scenario || back[0].Machine != rows[0].Machine {
		t.Errorf("read back %d rows, first %+v", len(back), back[0])
	}
}

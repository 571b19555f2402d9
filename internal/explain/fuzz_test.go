package explain

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"quartet.dev/quartet/internal/manifest"
)

// FuzzManifests checks that no input makes explain panic: the corpus and
// the chapter's examples are the seeds (go test -fuzz FuzzManifests
// explores further).
func FuzzManifests(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "corpus"), filepath.Join("..", "..", "examples", "chapter")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, errs := manifest.Read(bytes.NewReader(data), "fuzz.yaml")
		r := Manifests(objs, errs, Options{Now: testNow})
		var out bytes.Buffer
		if err := r.Text(&out); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTruncatedManifests explains every prefix of the corpus files (at a
// stride), a cheap stand-in for fuzzing on every test run: half-written
// manifests must give findings or read errors, never a panic.
func TestTruncatedManifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut < len(data); cut += 5 {
			objs, errs := manifest.Read(bytes.NewReader(data[:cut]), "cut.yaml")
			var out bytes.Buffer
			if err := Manifests(objs, errs, Options{Now: testNow}).Text(&out); err != nil {
				t.Fatal(err)
			}
		}
	}
}

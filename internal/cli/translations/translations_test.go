package translations

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestLanguage(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"LANG": "C"}, ""},
		{map[string]string{"LANG": "C.UTF-8"}, "C"},
		{map[string]string{"LANG": "en_US.UTF-8"}, "en_US"},
		{map[string]string{"LANG": "ja_JP.UTF-8"}, "ja_JP"},
		{map[string]string{"LANG": "ja_JP"}, ""},
		{map[string]string{"LANG": "ja_JP.UTF-8.x"}, ""},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8"}, "fr_FR"},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8", "LC_ALL": "de_DE.UTF-8"}, "de_DE"},
	} {
		if got := language(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("language(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
	if translated("") || translated("en_US") || translated("default") || translated("C") || !translated("ja_JP") {
		t.Error("translated: wrong for en_US, default, C or ja_JP")
	}
}

// TestCatalogs checks the two facts the loader relies on, against the
// kubectl module this build uses: catalogs lists every language kubectl
// has a catalog for besides English, and the English catalogs translate
// every message to itself.
func TestCatalogs(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubectl").Output()
	if err != nil {
		t.Fatalf("go list -m k8s.io/kubectl: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "util", "i18n", "translations", "kubectl")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var langs []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "default" && e.Name() != "en_US" {
			langs = append(langs, e.Name())
		}
	}
	if !slices.Equal(langs, catalogs) {
		t.Errorf("kubectl has catalogs for %v, the loader knows %v", langs, catalogs)
	}
	for _, lang := range []string{"default", "en_US"} {
		po, err := os.ReadFile(filepath.Join(dir, lang, "LC_MESSAGES", "k8s.po"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, entry := range strings.Split(string(po), "\n\n") {
			id, str := poString(t, entry, "msgid"), poString(t, entry, "msgstr")
			if id == "" {
				continue
			}
			n++
			if id != str {
				t.Errorf("%s translates %q to %q", lang, id, str)
			}
		}
		if n < 100 {
			t.Errorf("%s: only %d messages read", lang, n)
		}
	}
}

var poLine = regexp.MustCompile(`^(msgid|msgstr)? ?("(?:[^"\\]|\\.)*")$`)

// poString is the value of a PO entry's keyword (its quoted strings
// joined), "" when absent.
func poString(t *testing.T, entry, keyword string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(entry, "\n") {
		m := poLine.FindStringSubmatch(line)
		switch {
		case m == nil:
			in = false
			continue
		case m[1] == keyword:
			in = true
		case m[1] != "":
			in = false
		}
		if in {
			s, err := strconv.Unquote(m[2])
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

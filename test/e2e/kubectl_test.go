package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"quartet.dev/quartet/test/cluster"
)

// TestKubectlTranslations: `quartet kubectl` under an English locale parses
// no message catalog while it starts (internal/cli/translations replaces
// kubectl's loader before kubectl's packages translate their texts: no
// package's init allocates the ~4 MB a parse takes), and under a locale
// kubectl has a catalog for it still speaks that language. Neither it nor
// the binary run as a container's init collects garbage while its packages
// are initialised (internal/cli/startgc).
func TestKubectlTranslations(t *testing.T) {
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) (string, string) {
		cmd := exec.Command(bin, "kubectl", "create", "--help")
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "KUBECONFIG=" + kc}, env...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("quartet kubectl create --help (%v): %v\n%s", env, err, errOut.String())
		}
		return out.String(), errOut.String()
	}

	out, trace := run("LANG=C.UTF-8", "GODEBUG=inittrace=1,gctrace=1")
	if !strings.Contains(out, "Create a namespace with the specified name") {
		t.Errorf("LANG=C.UTF-8: help lacks the English text:\n%s", out)
	}
	initLine := regexp.MustCompile(`^init (\S+) @.* ([0-9]+) bytes, [0-9]+ allocs$`)
	seen := 0
	for _, line := range strings.Split(trace, "\n") {
		m := initLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen++
		if n, _ := strconv.Atoi(m[2]); n > 2<<20 {
			t.Errorf("package %s allocated %d bytes in its init (a message catalog parsed at start-up?)", m[1], n)
		}
	}
	if seen < 100 || !strings.Contains(trace, "init quartet.dev/quartet/internal/cli/translations @") {
		t.Fatalf("GODEBUG=inittrace=1 traced %d package inits, without internal/cli/translations:\n%.2000s", seen, trace)
	}
	gcDuringInit(t, "quartet kubectl", trace)
	// As a container's init without libcontainer's pipes, the binary stops
	// at libcontainer's init (exit 255), after the packages it needs.
	cmd := exec.Command(bin, "init")
	cmd.Env = []string{"GODEBUG=inittrace=1,gctrace=1"}
	initTrace, _ := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 255 || strings.Count(string(initTrace), "\ninit ") < 100 {
		t.Fatalf("quartet init: %v\n%.2000s", cmd.ProcessState, initTrace)
	}
	gcDuringInit(t, "quartet init", string(initTrace))

	out, _ = run("LANG=ja_JP.UTF-8")
	if !strings.Contains(out, "指定された名前でNamespaceを作成する") {
		t.Errorf("LANG=ja_JP.UTF-8: help is not in Japanese:\n%s", out)
	}
}

// gcDuringInit fails the test when more than one garbage collection
// (GODEBUG=gctrace=1) ended before the last package init (GODEBUG=
// inittrace=1): one may have begun before the pause did (the heap reaches
// the first cycle's trigger, ~3 MB, about when startgc is initialised);
// without the pause there are 3-4.
func gcDuringInit(t *testing.T, what, trace string) {
	t.Helper()
	last := strings.LastIndex(trace, "\ninit ")
	var cycles []string
	for _, line := range strings.Split(trace[:last], "\n") {
		if strings.HasPrefix(line, "gc ") {
			cycles = append(cycles, line)
		}
	}
	if len(cycles) > 1 {
		t.Errorf("%s: %d garbage collections while its packages were initialised:\n%s", what, len(cycles), strings.Join(cycles, "\n"))
	}
}

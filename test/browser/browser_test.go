// Package browser tests `quartet ui` in headless Chromium and Firefox: a
// cluster started through the binary, the chapter's manifests applied, each
// view checked against what the cluster holds, screenshots kept, and the
// issue's targets measured and printed.
package browser

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

var (
	shots      = flag.String("screenshots", "", "directory for the screenshots (default: bin/ui-screenshots in the repository)")
	updateDocs = flag.Bool("update-docs", false, "also copy the screenshots into docs/images/ui for docs/ui.md")
)

var loginURL = regexp.MustCompile(`web UI\s+(http://127\.0\.0\.1:\d+)/login\?token=(\S+)`)

// driver is one browser under test: Chromium through chromedp
// (chromium_test.go) or Firefox through Marionette (firefox_test.go).
type driver interface {
	// navigate opens url and waits for its load.
	navigate(url string) error
	// eval runs a JavaScript expression in the page, awaits its promise,
	// and decodes the result as JSON into out.
	eval(js string, out any) error
	// screenshot returns a PNG of the whole page.
	screenshot() ([]byte, error)
	// click clicks the first element matching a CSS selector.
	click(css string) error
	// typeInto focuses the first element matching a CSS selector and
	// types text as key presses; "\r" is Enter.
	typeInto(css, text string) error
	// pressEscape presses Esc in whatever element has the focus.
	pressEscape() error
}

type ui struct {
	t       *testing.T
	c       *cluster.Cluster
	base    string
	drv     driver
	browser string // "Chromium" or "Firefox"
	shotDir string
	prefix  string // of the screenshots' names
}

// eval runs JavaScript in the page and awaits its promise.
func (u *ui) eval(js string, out any) {
	u.t.Helper()
	if err := u.drv.eval(js, out); err != nil {
		u.t.Fatalf("%s: evaluating %s: %v", u.browser, js, err)
	}
}

// waitJS polls a JavaScript condition until it is true, at most d.
func (u *ui) waitJS(what, cond string, d time.Duration) {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		u.eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var text string
			u.eval("document.querySelector('main').innerText.slice(0, 3000)", &text)
			u.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			u.t.Fatalf("%s: timed out after %s waiting for %s (%s); the page shows:\n%s", u.browser, d, what, cond, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (u *ui) texts(selector string) []string {
	u.t.Helper()
	var out []string
	u.eval(fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.trim())`, selector), &out)
	return out
}

func (u *ui) navigate(url string) {
	u.t.Helper()
	if err := u.drv.navigate(url); err != nil {
		u.t.Fatalf("%s: opening %s: %v", u.browser, url, err)
	}
}

func (u *ui) open(hash string) { u.t.Helper(); u.navigate(u.base + "/" + hash) }

func (u *ui) click(css string) {
	u.t.Helper()
	if err := u.drv.click(css); err != nil {
		u.t.Fatalf("%s: clicking %s: %v", u.browser, css, err)
	}
}

func (u *ui) typeInto(css, text string) {
	u.t.Helper()
	if err := u.drv.typeInto(css, text); err != nil {
		u.t.Fatalf("%s: typing %q into %s: %v", u.browser, text, css, err)
	}
}

func (u *ui) pressEscape() {
	u.t.Helper()
	if err := u.drv.pressEscape(); err != nil {
		u.t.Fatalf("%s: pressing Esc: %v", u.browser, err)
	}
}

func (u *ui) shot(name string) {
	png, err := u.drv.screenshot()
	if err != nil {
		u.t.Errorf("%s: screenshot %s: %v", u.browser, name, err)
		return
	}
	p := filepath.Join(u.shotDir, u.prefix+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		u.t.Error(err)
	}
	u.t.Logf("screenshot %s", p)
}

// report prints a measured figure of this browser beside its target.
func (u *ui) report(what string, v float64, unit string, target float64) {
	report(u.browser+": "+what, v, unit, target)
}

func (u *ui) kubectl(stdin string, args ...string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := u.c.Kubectl(ctx, stdin, args...)
	if err != nil {
		u.t.Fatal(err)
	}
	return out
}

func example(t *testing.T, name string) string {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "chapter", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startUI starts a cluster through the binary, checks that the UI refuses
// requests without its session, applies the chapter's manifests at once
// (the views fill in as the controllers work), and returns the UI, still
// without a browser, and its one-time login token.
func startUI(t *testing.T, browser, prefix string) (*ui, string) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shotDir := *shots
	if shotDir == "" {
		shotDir = filepath.Join(root, "bin", "ui-screenshots")
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Start(cluster.Options{Args: []string{"--nodes=3"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("quartet up output:\n%s", c.Output.String())
		}
	})
	m := loginURL.FindStringSubmatch(c.Output.String())
	if m == nil {
		t.Fatalf("no web UI line in the output of quartet up:\n%s", c.Output.String())
	}
	base, token := m[1], m[2]

	// Without the token's session, nothing is served.
	refused(t, base+"/", http.StatusUnauthorized)
	refused(t, base+"/api/views/cluster", http.StatusUnauthorized)
	refused(t, base+"/api/stream/statefulsets", http.StatusUnauthorized)
	refused(t, base+"/login?token=not-the-token", http.StatusForbidden)

	u := &ui{t: t, c: c, base: base, browser: browser, shotDir: shotDir, prefix: prefix}
	u.kubectl(example(t, "web-headless.yaml")+"\n---\n"+example(t, "web-statefulset.yaml"), "apply", "-f", "-")
	u.kubectl("", "create", "namespace", "monitoring")
	u.kubectl(example(t, "node-exporter-daemonset.yaml"), "apply", "-f", "-")
	u.kubectl(example(t, "db-migration-job-failing.yaml"), "apply", "-f", "-")
	u.kubectl(example(t, "db-backup-cronjob.yaml"), "apply", "-f", "-")
	return u, token
}

// firstView logs in with the token and measures the first view: from
// opening the login URL to the cluster view drawn with the cluster's
// nodes, then the same for a page opened again with the session.
func firstView(u *ui, token string) {
	t := u.t
	u.navigate(u.base + "/login?token=" + token + "#/cluster")
	var first float64
	u.eval(firstViewJS, &first)
	t.Logf("%s: first view drawn %.0f ms after opening the login URL (target < 1000 ms)", u.browser, first)
	u.report("first view (login URL to cluster view drawn, cold browser)", first, "ms", 1000)
	var again []float64
	for range 3 {
		u.navigate(u.base + "/?reload#/cluster")
		var ms float64
		u.eval(firstViewJS, &ms)
		again = append(again, ms)
		u.navigate("about:blank")
	}
	t.Logf("%s: first view of a page opened again: %v ms", u.browser, again)
	u.report("first view (page opened again with the session, median of 3)", median(again), "ms", 1000)
	// The token works once.
	refused(t, u.base+"/login?token="+token, http.StatusForbidden)
}

// chapterViews checks each view against what the cluster holds after the
// chapter's manifests: the checks shared by every browser.
func chapterViews(t *testing.T, u *ui) {
	t.Run("StatefulSet", func(t *testing.T) { u.t = t; statefulSetView(u) })
	t.Run("DaemonSet", func(t *testing.T) { u.t = t; daemonSetView(u) })
	t.Run("Job", func(t *testing.T) { u.t = t; jobView(u) })
	t.Run("CronJob", func(t *testing.T) { u.t = t; cronJobView(u) })
	t.Run("Cluster", func(t *testing.T) { u.t = t; clusterView(u) })
	u.t = t
}

func TestUI(t *testing.T) {
	exe := chromium(t)
	u, token := startUI(t, "Chromium", "")
	d, stop := startChromium(t, exe)
	defer stop()
	u.drv = d

	firstView(u, token)
	chapterViews(t, u)
	t.Run("ThousandPods", func(t *testing.T) { u.t = t; thousandPods(u) })

	if *updateDocs && !t.Failed() {
		root, err := cluster.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, "docs", "images", "ui")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"statefulset", "daemonset", "job", "cronjob", "yaml-explain", "cluster", "thousand-pods"} {
			b, err := os.ReadFile(filepath.Join(u.shotDir, n+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, n+".png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// firstViewJS resolves, once the cluster view shows the nodes, with the
// milliseconds since the navigation started.
const firstViewJS = `new Promise(res => { const ok = () => document.querySelectorAll('[data-testid=node-chip]').length > 0;
  if (ok()) return res(performance.now());
  new MutationObserver((_, o) => { if (ok()) { o.disconnect(); res(performance.now()); } }).observe(document, {subtree: true, childList: true}); })`

// refused checks that a request without a session gets code.
func refused(t *testing.T, url string, code int) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code {
		t.Errorf("GET %s without a session: %d, want %d\n%s", url, resp.StatusCode, code, body)
	}
}

// report prints a measured figure beside its target.
func report(what string, v float64, unit string, target float64) {
	verdict := "met"
	if v >= target {
		verdict = "MISSED"
	}
	fmt.Printf("UI TARGET %-60s %8.1f %s (target < %g %s: %s)\n", what, v, unit, target, unit, verdict)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

// quartetNode runs `quartet node ...` against the test's cluster.
func quartetNode(u *ui, args ...string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := u.c.Quartet(ctx, append([]string{"node"}, args...)...); err != nil {
		u.t.Fatalf("%v: %s", err, out)
	}
}

package browser

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

// firefox is the Firefox the test drives: $FIREFOX, else Debian's ESR.
func firefox(t *testing.T) string {
	for _, p := range []string{os.Getenv("FIREFOX"), "/usr/bin/firefox-esr", "/usr/bin/firefox"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no firefox: .ci/run installs Debian's firefox-esr")
	}
	t.Skip("no firefox: the web UI is not tested in Firefox here (apt-get install firefox-esr, or set $FIREFOX)")
	return ""
}

// firefoxPrefs go into the test profile's user.js. Marionette sets its
// recommended automation prefs itself; port 0 makes it listen on a free
// port, which it writes to MarionetteActivePort in the profile.
const firefoxPrefs = `user_pref("marionette.port", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
`

// ffDriver drives headless Firefox through Marionette.
type ffDriver struct{ *marionette }

// startFirefox starts headless Firefox on a fresh profile and opens a
// WebDriver session in it; the test's clean-up quits it (or kills its
// process group) and fails if any of its processes is left.
func startFirefox(t *testing.T, exe string) *ffDriver {
	profile := t.TempDir()
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--headless", "--marionette", "--no-remote", "-profile", profile)
	cmd.Env = append(os.Environ(), "HOME="+profile, "MOZ_CRASHREPORTER_DISABLE=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cluster.EnableSubreaper() // its children, if orphaned, stay visible to Leftovers
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	d := &ffDriver{}
	t.Cleanup(func() {
		pid := cmd.Process.Pid
		if d.marionette != nil {
			_ = d.call("Marionette:Quit", map[string]any{"flags": []string{"eForceQuit"}}, nil)
			d.conn.Close()
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Logf("firefox (pid %d) did not quit: killing its process group", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		// Its content processes leave with it; give them a moment.
		var left []string
		for range 50 {
			if left = cluster.Leftovers(pid); len(left) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		t.Errorf("firefox processes left behind (pid %d): %s", pid, strings.Join(left, "; "))
	})

	portFile := filepath.Join(profile, "MarionetteActivePort")
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, err := os.ReadFile(portFile)
		if port := strings.TrimSpace(string(b)); err == nil && port != "" {
			if d.marionette, err = dialMarionette("127.0.0.1:" + port); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-exited:
			t.Fatalf("firefox exited before Marionette listened:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("firefox's Marionette did not listen within 90 s:\n%s", out.String())
		}
	}
	var session struct {
		Capabilities struct{ BrowserName, BrowserVersion string }
	}
	if err := d.call("WebDriver:NewSession", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"timeouts": map[string]int{"script": 60000, "pageLoad": 60000},
	}}}, &session); err != nil {
		t.Fatal(err)
	}
	t.Logf("driving %s %s (%s) through Marionette", session.Capabilities.BrowserName, session.Capabilities.BrowserVersion, exe)
	if err := d.call("WebDriver:SetWindowRect", map[string]int{"width": 1400, "height": 900}, nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUIFirefox checks the chapter's views in Firefox as TestUI does in
// Chromium (the thousand-pod measurements stay Chromium's: Firefox has no
// long-task timing).
func TestUIFirefox(t *testing.T) {
	exe := firefox(t)
	start := time.Now()
	d := startFirefox(t, exe)
	u, token := startUI(t, "Firefox", "firefox-")
	u.drv = d
	firstView(u, token)
	chapterViews(t, u)
	fmt.Printf("UI Firefox: the views checked %s after the test started\n", time.Since(start).Round(time.Second))
}

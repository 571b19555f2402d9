package browser

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is the Chromium the test drives: $CHROMIUM, else Debian's.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium: .ci/run installs Debian's chromium")
	}
	t.Skip("no chromium (apt-get install chromium)")
	return ""
}

// chromeDriver drives headless Chromium through the DevTools protocol.
type chromeDriver struct{ ctx context.Context }

// startChromium starts headless Chromium with a profile of its own; stop
// ends it.
func startChromium(t *testing.T, exe string) (d *chromeDriver, stop func()) {
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 15*time.Minute)
	return &chromeDriver{ctx: ctx}, func() { cancel(); cancelBrowser(); cancelAlloc() }
}

func (d *chromeDriver) navigate(url string) error { return chromedp.Do(d.ctx, chromedp.Navigate(url)) }

func (d *chromeDriver) eval(js string, out any) error {
	v, err := chromedp.Run(d.ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (d *chromeDriver) screenshot() ([]byte, error) {
	return chromedp.Run(d.ctx, chromedp.FullScreenshot(100))
}

func (d *chromeDriver) click(css string) error {
	return chromedp.Do(d.ctx, chromedp.Click(chromedp.CSS(css)))
}

func (d *chromeDriver) typeInto(css, text string) error {
	return chromedp.Do(d.ctx, chromedp.Focus(chromedp.CSS(css)), chromedp.SendKeys(chromedp.CSS(css), text))
}

func (d *chromeDriver) pressEscape() error { return chromedp.Do(d.ctx, chromedp.KeyEvent("\x1b")) }

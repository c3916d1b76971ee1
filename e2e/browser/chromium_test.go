package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"titanium/devstack"
)

// chromiumPath is Debian's chromium (apt-get install chromium); CI installs it.
const chromiumPath = "/usr/bin/chromium"

// page is one headless Chromium tab with the errors it reported.
type page struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

// openBrowser starts a fresh headless Chromium (its own profile in a temp
// dir) and stops it at cleanup.
func openBrowser(t *testing.T) *page {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s not found: the browser test needs Debian's chromium (apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first Do starts the browser and binds it to ctx: no timeout on it
	// (chromedp's rule); every later action gets its own deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	p := &page{ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return // the tab closed
			}
			// Failed requests are expected while a process is down; an
			// exception, console.error or a CSP violation never is.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				p.mu.Lock()
				p.problems = append(p.problems, m.String())
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-done
	})
	return p
}

// errors returns what the page reported so far.
func (p *page) errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// do runs actions with a deadline.
func (p *page) do(t *testing.T, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// text evaluates a string expression.
func (p *page) text(t *testing.T, expr string) string {
	t.Helper()
	s, err := eval[string](p, expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// wait polls a boolean expression until it holds, failing with the page's
// text after timeout.
func (p *page) wait(t *testing.T, timeout time.Duration, what, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	var lastErr error
	for time.Since(start) < timeout {
		ok, err := eval[bool](p, expr)
		if lastErr = err; err == nil && ok {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	visible, _ := eval[string](p, `document.body.innerText.slice(0, 2000)`)
	t.Fatalf("timed out after %v waiting for %s\n  condition: %s\n  last error: %v\n--- page text ---\n%s", timeout, what, expr, lastErr, visible)
	return 0
}

// screenshot saves a full-page PNG at width×height in e2e/artifacts/.
func (p *page) screenshot(t *testing.T, name string, width, height int64) string {
	t.Helper()
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.do(t, 10*time.Second, chromedp.EmulateViewport(width, height), chromedp.Sleep(500*time.Millisecond)) // charts resize
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %dx%d: %s", width, height, path)
	p.do(t, 10*time.Second, chromedp.EmulateViewport(1440, 900))
	return path
}

// Package chromium drives a real headless Chromium (Debian's
// /usr/bin/chromium, through chromedp) for the browser tests: a fresh
// browser per test with its own profile, the errors its pages report, a
// polled wait on a JavaScript condition, and full-page screenshots saved to
// e2e/artifacts/.
package chromium

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

// Path is Debian's chromium (apt-get install chromium); CI installs it.
const Path = "/usr/bin/chromium"

// evalTimeout bounds one JavaScript evaluation.
const evalTimeout = 5 * time.Second

// Option adjusts the browser New starts.
type Option func(*Tab)

// WindowSize sets the browser window (and the viewport Screenshot restores);
// the default is 1440×900.
func WindowSize(width, height int64) Option {
	return func(tb *Tab) { tb.width, tb.height = width, height }
}

// Tab is one headless Chromium tab and the errors its pages reported.
type Tab struct {
	ctx           context.Context
	width, height int64

	mu       sync.Mutex
	problems []string
}

// New starts a fresh headless Chromium with its own profile in a temporary
// directory, collects what its pages report (exceptions, console errors, CSP
// violations) and stops it at cleanup. It fails the test if Chromium is not
// installed or does not start.
func New(t testing.TB, opts ...Option) *Tab {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("%s not found: the browser tests need Debian's chromium (apt-get install chromium)", Path)
	}
	tb := &Tab{width: 1440, height: 900}
	for _, o := range opts {
		o(tb)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Nothing but the page under test on the network: no updates, sync
		// or QUIC probes.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(tb.width), int(tb.height)),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first Do starts the browser and binds it to ctx: no timeout on it
	// (chromedp's rule); every later action gets its own deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", Path, err)
	}
	tb.ctx = ctx
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return // the tab closed
			}
			// A failed request shows as a network error and is the page's to
			// handle (the tests fail requests on purpose); an exception,
			// console.error or CSP violation never is.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				tb.mu.Lock()
				tb.problems = append(tb.problems, m.String())
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-done
	})
	return tb
}

// Context is the tab's context, for chromedp calls of the test's own; give
// each a deadline.
func (tb *Tab) Context() context.Context { return tb.ctx }

// Errors returns what the tab's pages reported so far.
func (tb *Tab) Errors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

// Do runs actions within timeout, failing the test on error.
func (tb *Tab) Do(t testing.TB, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates a JavaScript expression in the tab, awaiting it if it is a
// promise, within 5 s.
func Eval[T any](tb *Tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, evalTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Text evaluates a string expression, failing the test on error.
func (tb *Tab) Text(t testing.TB, expr string) string {
	t.Helper()
	s, err := Eval[string](tb, expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// Wait polls a boolean expression every 100 ms until it holds and returns
// how long that took; after timeout it fails the test with the page's text.
func (tb *Tab) Wait(t testing.TB, timeout time.Duration, what, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	var lastErr error
	for time.Since(start) < timeout {
		ok, err := Eval[bool](tb, expr)
		if lastErr = err; err == nil && ok {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	visible, _ := Eval[string](tb, `document.body.innerText.slice(0, 2000)`)
	t.Fatalf("timed out after %v waiting for %s\n  condition: %s\n  last error: %v\n--- page text ---\n%s", timeout, what, expr, lastErr, visible)
	return 0
}

// Screenshot saves a full-page PNG of the tab at a width×height viewport as
// e2e/artifacts/<name>.png in the repository (git-ignored; CI keeps it),
// then restores the window's viewport. It returns the file's path.
func (tb *Tab) Screenshot(t testing.TB, name string, width, height int64) string {
	t.Helper()
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tb.Do(t, 20*time.Second, chromedp.EmulateViewport(width, height), chromedp.Sleep(500*time.Millisecond)) // charts resize
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
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
	tb.Do(t, 10*time.Second, chromedp.EmulateViewport(tb.width, tb.height))
	return path
}

package blog_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// chromiumPath is Debian's chromium (apt-get install chromium); CI installs it.
const chromiumPath = "/usr/bin/chromium"

// tab is one headless Chromium tab and the errors its console reported.
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func openTab(t *testing.T) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s not found: the SPA test needs Debian's chromium (apt-get install chromium)", chromiumPath)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first Do starts the browser and binds it to ctx: no timeout on it
	// (chromedp's rule); every later action gets its own deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	tb := &tab{ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return // the tab closed
			}
			// A failed request shows as a network error and is the app's to
			// handle; an exception, console.error or CSP violation never is.
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

func (tb *tab) errors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

func (tb *tab) navigate(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

func evalIn[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// run evaluates a statement (a user action done through the DOM).
func (tb *tab) run(t *testing.T, js string) {
	t.Helper()
	if _, err := evalIn[bool](tb, "(() => {"+js+"; return true; })()"); err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
}

// wait polls a boolean expression until it holds.
func (tb *tab) wait(t *testing.T, what, expr string) {
	t.Helper()
	const timeout = 10 * time.Second
	start := time.Now()
	var lastErr error
	for time.Since(start) < timeout {
		ok, err := evalIn[bool](tb, expr)
		if lastErr = err; err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	visible, _ := evalIn[string](tb, `document.body.innerText.slice(0, 1500)`)
	t.Fatalf("timed out waiting for %s\n  condition: %s\n  last error: %v\n--- page text ---\n%s", what, expr, lastErr, visible)
}

// fill sets form fields by name in the current view and submits the form,
// as a user typing and pressing Enter would.
func (tb *tab) fill(t *testing.T, fields map[string]string) {
	t.Helper()
	js := "const f = document.querySelector('#view form');"
	for name, value := range fields {
		js += fmt.Sprintf("f.elements[%s].value = %s; f.elements[%s].dispatchEvent(new Event('input'));",
			strconv.Quote(name), strconv.Quote(value), strconv.Quote(name))
	}
	tb.run(t, js+"f.requestSubmit()")
}

// TestSPAThroughTheLoadBalancer uses the blog page as a user would, through
// the load balancer and gateway of a real stack: register, write a post
// whose title is HTML (it must show as text), edit it, page through the list
// with "Load more", and delete it.
func TestSPAThroughTheLoadBalancer(t *testing.T) {
	s := stacktest.Start(t)
	lb := s.LB()

	// Someone else's posts, so that the list has more than one page.
	other := []string{"Authorization", "Bearer " + mint(t, s.JWTSecret, "someone-else")}
	for i := 1; i <= 12; i++ {
		r := httpc.Do(t, http.MethodPost, s.URL("blog-service")+"/api/posts",
			map[string]string{"title": fmt.Sprintf("Older post %d", i), "content": "Filler"}, other...)
		if r.Status != http.StatusCreated {
			t.Fatalf("seed post: %d %s", r.Status, r.Body)
		}
	}

	tb := openTab(t)
	tb.navigate(t, lb+"/blog/")
	tb.wait(t, "the first page of 10 posts and Load more",
		`document.querySelectorAll('.posts .card').length === 10 &&
		 [...document.querySelectorAll('button')].some(b => b.textContent === 'Load more' && !b.hidden)`)

	// Register (which logs in).
	user := fmt.Sprintf("spa%d", time.Now().UnixNano()%1_000_000_000)
	tb.run(t, `location.hash = '#/register'`)
	tb.wait(t, "the register form", `!!document.querySelector('#view form [name=email]')`)
	tb.fill(t, map[string]string{"username": user, "email": user + "@example.com", "password": "correct horse battery staple"})
	tb.wait(t, "logged in after registering",
		fmt.Sprintf(`document.getElementById('nav-user').textContent === %q && !document.getElementById('nav-write').hidden`, user))

	// Write a post whose title and content are HTML: it must be shown as text.
	const evilTitle = `<img src=x onerror="window.pwned=1">Hello`
	const evilContent = "<script>window.pwned=2</script>\nSecond line"
	tb.run(t, `location.hash = '#/new'`)
	tb.wait(t, "the editor", `!!document.querySelector('#view form textarea')`)
	tb.fill(t, map[string]string{"title": evilTitle, "content": evilContent})
	tb.wait(t, "the published post shown as text", fmt.Sprintf(
		`location.hash.startsWith('#/posts/') && document.querySelector('article h1')?.textContent === %q &&
		 document.querySelector('article .content').textContent === %q`, evilTitle, evilContent))
	if n, _ := evalIn[float64](tb, `document.querySelectorAll('#view img, #view script').length`); n != 0 {
		t.Errorf("user content became %v HTML elements", n)
	}
	if pwned, _ := evalIn[bool](tb, `window.pwned !== undefined`); pwned {
		t.Error("user content ran as script")
	}

	// Edit it.
	tb.run(t, `[...document.querySelectorAll('#view a')].find(a => a.textContent === 'Edit').click()`)
	tb.wait(t, "the editor with the post", fmt.Sprintf(`document.querySelector('#view form [name=title]')?.value === %q`, evilTitle))
	tb.fill(t, map[string]string{"title": "Edited in the browser"})
	tb.wait(t, "the edited title", `location.hash.match(/^#\/posts\/\d+$/) && document.querySelector('article h1')?.textContent === 'Edited in the browser'`)
	id, err := evalIn[string](tb, `location.hash.split('/')[2]`)
	if err != nil {
		t.Fatal(err)
	}

	// The list shows it first, and Load more fetches the rest until the end.
	tb.run(t, `location.hash = '#/'`)
	tb.wait(t, "the list with the new post first",
		`document.querySelector('.posts .card h2')?.textContent === 'Edited in the browser'`)
	tb.run(t, `[...document.querySelectorAll('button')].find(b => b.textContent === 'Load more').click()`)
	tb.wait(t, "all 13 posts after Load more, and no more button",
		`document.querySelectorAll('.posts .card').length === 13 &&
		 [...document.querySelectorAll('button')].every(b => b.textContent !== 'Load more' || b.hidden)`)

	// Someone else's post has no Edit or Delete.
	tb.run(t, `document.querySelectorAll('.posts .card h2 a')[1].click()`)
	tb.wait(t, "another user's post without edit or delete",
		`document.querySelector('article h1')?.textContent.startsWith('Older post') &&
		 ![...document.querySelectorAll('#view a, #view button')].some(e => e.textContent === 'Edit' || e.textContent === 'Delete')`)

	// Delete our post (confirming the dialog).
	tb.run(t, `location.hash = '#/posts/`+id+`'`)
	tb.wait(t, "our post with a Delete button", `[...document.querySelectorAll('#view button')].some(b => b.textContent === 'Delete')`)
	tb.run(t, `window.confirm = () => true; [...document.querySelectorAll('#view button')].find(b => b.textContent === 'Delete').click()`)
	tb.wait(t, "back on the list without the post",
		`(location.hash === '#/' || location.hash === '') && document.getElementById('flash').textContent === 'Post deleted.' &&
		 document.querySelectorAll('.posts .card').length === 10 &&
		 ![...document.querySelectorAll('.posts .card h2')].some(h => h.textContent === 'Edited in the browser')`)
	if r := httpc.Do(t, http.MethodGet, lb+"/api/posts/"+id, nil); r.Status != http.StatusNotFound {
		t.Errorf("deleted post through the load balancer: got %d, want 404", r.Status)
	}

	// Logging out hides the write actions.
	tb.run(t, `document.getElementById('nav-logout').click()`)
	tb.wait(t, "logged out", `document.getElementById('nav-write').hidden && !document.getElementById('nav-login').hidden`)

	for _, e := range tb.errors() {
		t.Errorf("browser console: %s", e)
	}
}

package blog_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"titanium/devstack/chromium"
	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// run evaluates a statement (a user action done through the DOM).
func run(t *testing.T, tb *chromium.Tab, js string) {
	t.Helper()
	if _, err := chromium.Eval[bool](tb, "(() => {"+js+"; return true; })()"); err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
}

// fill sets form fields by name in the current view and submits the form,
// as a user typing and pressing Enter would.
func fill(t *testing.T, tb *chromium.Tab, fields map[string]string) {
	t.Helper()
	js := "const f = document.querySelector('#view form');"
	for name, value := range fields {
		js += fmt.Sprintf("f.elements[%s].value = %s; f.elements[%s].dispatchEvent(new Event('input'));",
			strconv.Quote(name), strconv.Quote(value), strconv.Quote(name))
	}
	run(t, tb, js+"f.requestSubmit()")
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

	// Each step of the user below has 10 s to show on the page.
	const wait = 10 * time.Second
	tb := chromium.New(t, chromium.WindowSize(1280, 900))
	tb.Do(t, 20*time.Second, chromedp.Navigate(lb+"/blog/"))
	tb.Wait(t, wait, "the first page of 10 posts and Load more",
		`document.querySelectorAll('.posts .card').length === 10 &&
		 [...document.querySelectorAll('button')].some(b => b.textContent === 'Load more' && !b.hidden)`)

	// Register (which logs in).
	user := fmt.Sprintf("spa%d", time.Now().UnixNano()%1_000_000_000)
	run(t, tb, `location.hash = '#/register'`)
	tb.Wait(t, wait, "the register form", `!!document.querySelector('#view form [name=email]')`)
	fill(t, tb, map[string]string{"username": user, "email": user + "@example.com", "password": "correct horse battery staple"})
	tb.Wait(t, wait, "logged in after registering",
		fmt.Sprintf(`document.getElementById('nav-user').textContent === %q && !document.getElementById('nav-write').hidden`, user))

	// Write a post whose title and content are HTML: it must be shown as text.
	const evilTitle = `<img src=x onerror="window.pwned=1">Hello`
	const evilContent = "<script>window.pwned=2</script>\nSecond line"
	run(t, tb, `location.hash = '#/new'`)
	tb.Wait(t, wait, "the editor", `!!document.querySelector('#view form textarea')`)
	fill(t, tb, map[string]string{"title": evilTitle, "content": evilContent})
	tb.Wait(t, wait, "the published post shown as text", fmt.Sprintf(
		`location.hash.startsWith('#/posts/') && document.querySelector('article h1')?.textContent === %q &&
		 document.querySelector('article .content').textContent === %q`, evilTitle, evilContent))
	if n, _ := chromium.Eval[float64](tb, `document.querySelectorAll('#view img, #view script').length`); n != 0 {
		t.Errorf("user content became %v HTML elements", n)
	}
	if pwned, _ := chromium.Eval[bool](tb, `window.pwned !== undefined`); pwned {
		t.Error("user content ran as script")
	}

	// Edit it.
	run(t, tb, `[...document.querySelectorAll('#view a')].find(a => a.textContent === 'Edit').click()`)
	tb.Wait(t, wait, "the editor with the post", fmt.Sprintf(`document.querySelector('#view form [name=title]')?.value === %q`, evilTitle))
	fill(t, tb, map[string]string{"title": "Edited in the browser"})
	tb.Wait(t, wait, "the edited title", `location.hash.match(/^#\/posts\/\d+$/) && document.querySelector('article h1')?.textContent === 'Edited in the browser'`)
	id, err := chromium.Eval[string](tb, `location.hash.split('/')[2]`)
	if err != nil {
		t.Fatal(err)
	}

	// The list shows it first, and Load more fetches the rest until the end.
	run(t, tb, `location.hash = '#/'`)
	tb.Wait(t, wait, "the list with the new post first",
		`document.querySelector('.posts .card h2')?.textContent === 'Edited in the browser'`)
	run(t, tb, `[...document.querySelectorAll('button')].find(b => b.textContent === 'Load more').click()`)
	tb.Wait(t, wait, "all 13 posts after Load more, and no more button",
		`document.querySelectorAll('.posts .card').length === 13 &&
		 [...document.querySelectorAll('button')].every(b => b.textContent !== 'Load more' || b.hidden)`)

	// Someone else's post has no Edit or Delete.
	run(t, tb, `document.querySelectorAll('.posts .card h2 a')[1].click()`)
	tb.Wait(t, wait, "another user's post without edit or delete",
		`document.querySelector('article h1')?.textContent.startsWith('Older post') &&
		 ![...document.querySelectorAll('#view a, #view button')].some(e => e.textContent === 'Edit' || e.textContent === 'Delete')`)

	// Delete our post (confirming the dialog).
	run(t, tb, `location.hash = '#/posts/`+id+`'`)
	tb.Wait(t, wait, "our post with a Delete button", `[...document.querySelectorAll('#view button')].some(b => b.textContent === 'Delete')`)
	run(t, tb, `window.confirm = () => true; [...document.querySelectorAll('#view button')].find(b => b.textContent === 'Delete').click()`)
	tb.Wait(t, wait, "back on the list without the post",
		`(location.hash === '#/' || location.hash === '') && document.getElementById('flash').textContent === 'Post deleted.' &&
		 document.querySelectorAll('.posts .card').length === 10 &&
		 ![...document.querySelectorAll('.posts .card h2')].some(h => h.textContent === 'Edited in the browser')`)
	if r := httpc.Do(t, http.MethodGet, lb+"/api/posts/"+id, nil); r.Status != http.StatusNotFound {
		t.Errorf("deleted post through the load balancer: got %d, want 404", r.Status)
	}

	// Logging out hides the write actions.
	run(t, tb, `document.getElementById('nav-logout').click()`)
	tb.Wait(t, wait, "logged out", `document.getElementById('nav-write').hidden && !document.getElementById('nav-login').hidden`)

	for _, e := range tb.Errors() {
		t.Errorf("browser console: %s", e)
	}
}

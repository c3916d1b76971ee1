// Package blog_test runs blog-service as a real process in the whole stack
// and checks what only a real process can show: posts acknowledged with a
// 201 survive a kill -9 in the middle of a burst of writes.
package blog_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
	"titanium/platform/jwtauth"
)

type post struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Content string `json:"content"`
	Author  string `json:"author"`
}

type page struct {
	Items      []post  `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// mint signs a token the way auth-service does, with the stack's secret.
func mint(t *testing.T, secret, user string) string {
	t.Helper()
	cfg := jwtauth.Config{Secret: []byte(secret), Issuer: "titanium-auth", Audience: "titanium", TTL: 10 * time.Minute}
	tok, _, err := cfg.Issue(user, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBlogServiceCRUD(t *testing.T) {
	s := stacktest.Start(t)
	base := s.URL("blog-service")
	alice := mint(t, s.JWTSecret, "alice")
	bob := mint(t, s.JWTSecret, "bob")

	r := httpc.Do(t, http.MethodPost, base+"/api/posts", map[string]string{"title": "Hello", "content": "From the stack"}, "Authorization", "Bearer "+alice)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: got %d %s, want 201", r.Status, r.Body)
	}
	var p post
	r.JSON(t, &p)
	if p.Author != "alice" || p.ID <= 0 {
		t.Fatalf("created %+v", p)
	}
	url := fmt.Sprintf("%s/api/posts/%d", base, p.ID)

	steps := []struct {
		name   string
		method string
		body   any
		tok    string
		want   int
	}{
		{"read", http.MethodGet, nil, "", 200},
		{"edit by another user", http.MethodPatch, map[string]string{"title": "mine now"}, bob, 403},
		{"delete by another user", http.MethodDelete, nil, bob, 403},
		{"edit without a token", http.MethodPatch, map[string]string{"title": "anon"}, "", 401},
		{"edit by the author", http.MethodPatch, map[string]string{"title": "Hello, edited"}, alice, 200},
		{"delete by the author", http.MethodDelete, nil, alice, 204},
		{"read after delete", http.MethodGet, nil, "", 404},
	}
	for _, st := range steps {
		var hdr []string
		if st.tok != "" {
			hdr = []string{"Authorization", "Bearer " + st.tok}
		}
		if r := httpc.Do(t, st.method, url, st.body, hdr...); r.Status != st.want {
			t.Errorf("%s: got %d %s, want %d", st.name, r.Status, r.Body, st.want)
		}
	}
	if r := httpc.Do(t, http.MethodGet, base+"/blog/", nil); r.Status != http.StatusOK {
		t.Errorf("GET /blog/: got %d, want 200", r.Status)
	}
}

// TestAcknowledgedPostsSurviveKill9 kills blog-service with SIGKILL while
// several clients are creating posts, restarts it, and reads back every post
// that got a 201.
func TestAcknowledgedPostsSurviveKill9(t *testing.T) {
	s := stacktest.Start(t)
	p := s.Proc("blog-service")
	base := p.URL
	auth := []string{"Authorization", "Bearer " + mint(t, s.JWTSecret, "crashtest")}

	const (
		workers      = 6
		perWorker    = 400 // bounds the burst even if the kill never happens
		killAfterAck = 150
	)
	var (
		mu       sync.Mutex
		acked    = map[int64]string{} // id -> title
		ackCount atomic.Int64
		failed   atomic.Int64
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(30 * time.Second)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker && time.Now().Before(deadline); i++ {
				title := fmt.Sprintf("crash w%d n%d", w, i)
				r, err := httpc.Try(http.MethodPost, base+"/api/posts", map[string]string{"title": title, "content": "must survive"}, auth...)
				if err != nil {
					// The process is gone: this request may or may not have been
					// committed, but it was not acknowledged, so nothing is owed.
					failed.Add(1)
					return
				}
				if r.Status != http.StatusCreated {
					t.Errorf("create: got %d %s, want 201", r.Status, r.Body)
					return
				}
				var got post
				r.JSON(t, &got)
				mu.Lock()
				acked[got.ID] = title
				mu.Unlock()
				ackCount.Add(1)
			}
		}()
	}

	// Kill mid-burst: once enough posts are acknowledged, with writes in flight.
	for ackCount.Load() < killAfterAck && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ackCount.Load() < killAfterAck {
		t.Fatalf("only %d creates acknowledged before the deadline", ackCount.Load())
	}
	p.Kill()
	wg.Wait()
	if code := p.ExitCode(); code != -1 {
		t.Fatalf("blog-service exit code after SIGKILL: got %d, want -1 (killed by a signal)", code)
	}
	t.Logf("killed after %d acknowledged creates; %d requests failed at the kill", len(acked), failed.Load())
	if failed.Load() == 0 {
		t.Errorf("no create failed at the kill: the burst had ended before it, so the kill did not hit a burst")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}

	for id, title := range acked {
		r := httpc.Do(t, http.MethodGet, fmt.Sprintf("%s/api/posts/%d", base, id), nil)
		if r.Status != http.StatusOK {
			t.Errorf("post %d (%q) acknowledged before the kill: got %d after restart, want 200", id, title, r.Status)
			continue
		}
		var got post
		r.JSON(t, &got)
		if got.Title != title || got.Author != "crashtest" {
			t.Errorf("post %d after restart: got %+v, want title %q by crashtest", id, got, title)
		}
	}

	// The list walk after the restart also holds every acknowledged post once.
	seen := map[int64]int{}
	next := ""
	for pages := 0; pages < 200; pages++ {
		url := base + "/api/posts?limit=100"
		if next != "" {
			url += "&cursor=" + next
		}
		var pg page
		r := httpc.Do(t, http.MethodGet, url, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list after restart: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &pg)
		for _, it := range pg.Items {
			seen[it.ID]++
		}
		if pg.NextCursor == nil {
			break
		}
		next = *pg.NextCursor
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("post %d: listed %d times after restart, want 1", id, seen[id])
		}
	}

	// New writes work after the restart, and /stats counts what is there.
	r := httpc.Do(t, http.MethodPost, base+"/api/posts", map[string]string{"title": "after", "content": "restart"}, auth...)
	if r.Status != http.StatusCreated {
		t.Errorf("create after restart: got %d %s, want 201", r.Status, r.Body)
	}
	var st struct {
		Posts    int64 `json:"posts"`
		Database struct {
			Status string `json:"status"`
		} `json:"database"`
	}
	httpc.Do(t, http.MethodGet, base+"/stats", nil).JSON(t, &st)
	if st.Database.Status != "ONLINE" || st.Posts != int64(len(seen))+1 {
		t.Errorf("stats after restart: got posts=%d database=%q, want %d ONLINE", st.Posts, st.Database.Status, len(seen)+1)
	}
}

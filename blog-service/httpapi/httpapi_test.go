package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"titanium/blog-service/httpapi"
	"titanium/blog-service/posts"
	"titanium/blog-service/store"
	"titanium/blog-service/web"
	"titanium/platform/jwtauth"
	"titanium/platform/pagination"
	"titanium/platform/service"
	"titanium/platform/sqlitedb"
)

var testJWT = jwtauth.Config{
	Secret:   []byte("test-secret-for-blog-service-tests-0123456789"),
	Issuer:   "titanium-auth",
	Audience: "titanium",
	TTL:      time.Minute,
	Leeway:   time.Second,
}

// testServer is blog-service's real handler chain (the platform server
// with its middleware) over a real SQLite file, on a loopback port.
type testServer struct {
	URL   string
	Store *store.Store
}

// newChain is the platform server with the API registered, over a real
// SQLite file in tb's temp dir, with the read cache (nil: none).
func newChain(tb testing.TB, cache *posts.Cache) (*service.Server, *store.Store) {
	tb.Helper()
	st, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "posts.db"), sqlitedb.SyncNormal)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := service.New("blog-service", service.Config{Instance: "test"}, logger)
	httpapi.New(st, cache, testJWT, logger).Register(srv)
	return srv, st
}

// newServer is blog-service's whole handler over HTTP, with the read cache
// of the default size.
func newServer(t *testing.T) *testServer {
	t.Helper()
	return newServerWith(t, posts.NewCache(4096, 32<<20))
}

func newServerWith(t *testing.T, cache *posts.Cache) *testServer {
	t.Helper()
	srv, st := newChain(t, cache)
	srv.Handle("GET "+web.Prefix, web.Handler())
	srv.Handle("/", httpapi.NotFound())
	srv.AddCheck("database", st.Ping)
	srv.SetStats(httpapi.Stats(st))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testServer{URL: hs.URL, Store: st}
}

func token(t testing.TB, user string) string {
	t.Helper()
	tok, _, err := testJWT.Issue(user, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var client = &http.Client{Timeout: 10 * time.Second}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %d %q: %v", r.Status, r.Body, err)
	}
}

// do sends a request. body is sent as is when it is a string, as JSON
// otherwise; a "" token sends no Authorization header.
func do(t testing.TB, method, url, tok string, body any) *response {
	t.Helper()
	resp, err := try(method, url, tok, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

func try(method, url, tok string, body any) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

type page struct {
	Items      []posts.Post `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

func createPost(t testing.TB, s *testServer, tok, title, content string) posts.Post {
	t.Helper()
	r := do(t, http.MethodPost, s.URL+"/api/posts", tok, map[string]string{"title": title, "content": content})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: got %d %s, want 201", r.Status, r.Body)
	}
	var p posts.Post
	r.decode(t, &p)
	return p
}

func TestCRUD(t *testing.T) {
	s := newServer(t)
	alice := token(t, "alice")

	// Create.
	r := do(t, http.MethodPost, s.URL+"/api/posts", alice, map[string]string{"title": "  Hello  ", "content": "First\npost"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: got %d %s, want 201", r.Status, r.Body)
	}
	var raw map[string]any
	r.decode(t, &raw)
	for _, k := range []string{"id", "title", "content", "author", "created_at", "updated_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("create response lacks %q: %s", k, r.Body)
		}
	}
	var created posts.Post
	r.decode(t, &created)
	if created.Title != "Hello" || created.Content != "First\npost" || created.Author != "alice" {
		t.Errorf("created: got %+v, want title Hello (trimmed), author alice", created)
	}
	if got, want := r.Header.Get("Location"), fmt.Sprintf("/api/posts/%d", created.ID); got != want {
		t.Errorf("Location: got %q, want %q", got, want)
	}

	// Read.
	url := fmt.Sprintf("%s/api/posts/%d", s.URL, created.ID)
	r = do(t, http.MethodGet, url, "", nil)
	var got posts.Post
	r.decode(t, &got)
	if r.Status != http.StatusOK || !samePost(got, created) {
		t.Errorf("get: got %d %+v, want 200 %+v", r.Status, got, created)
	}

	// List.
	var pg page
	do(t, http.MethodGet, s.URL+"/api/posts", "", nil).decode(t, &pg)
	if len(pg.Items) != 1 || pg.Items[0].ID != created.ID || pg.NextCursor != nil {
		t.Errorf("list: got %+v", pg)
	}

	// Partial update: title only, then content only.
	r = do(t, http.MethodPatch, url, alice, map[string]string{"title": "Hello again"})
	var up posts.Post
	r.decode(t, &up)
	if r.Status != http.StatusOK || up.Title != "Hello again" || up.Content != "First\npost" || !up.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("patch title: got %d %+v", r.Status, up)
	}
	r = do(t, http.MethodPatch, url, alice, map[string]string{"content": "Edited"})
	r.decode(t, &up)
	if r.Status != http.StatusOK || up.Title != "Hello again" || up.Content != "Edited" {
		t.Errorf("patch content: got %d %+v", r.Status, up)
	}
	do(t, http.MethodGet, url, "", nil).decode(t, &got)
	if !samePost(got, up) {
		t.Errorf("get after patch: got %+v, want %+v", got, up)
	}

	// Delete.
	r = do(t, http.MethodDelete, url, alice, nil)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Errorf("delete: got %d %q, want 204 and no body", r.Status, r.Body)
	}
	for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodDelete} {
		r = do(t, m, url, alice, map[string]string{"title": "x"})
		if m == http.MethodGet || m == http.MethodDelete {
			r = do(t, m, url, alice, nil)
		}
		if r.Status != http.StatusNotFound {
			t.Errorf("%s after delete: got %d %s, want 404", m, r.Status, r.Body)
		}
	}
}

func samePost(a, b posts.Post) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Content == b.Content && a.Author == b.Author &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestOnlyTheAuthorChangesAPost(t *testing.T) {
	s := newServer(t)
	p := createPost(t, s, token(t, "alice"), "Mine", "Hands off")
	url := fmt.Sprintf("%s/api/posts/%d", s.URL, p.ID)
	bob := token(t, "bob")

	r := do(t, http.MethodPatch, url, bob, map[string]string{"title": "Bob was here"})
	assertError(t, r, http.StatusForbidden, "forbidden", "")
	r = do(t, http.MethodDelete, url, bob, nil)
	assertError(t, r, http.StatusForbidden, "forbidden", "")

	var got posts.Post
	do(t, http.MethodGet, url, "", nil).decode(t, &got)
	if !samePost(got, p) {
		t.Errorf("post changed by another user: got %+v, want %+v", got, p)
	}
	// A missing post is 404 for anyone, not 403.
	r = do(t, http.MethodDelete, fmt.Sprintf("%s/api/posts/%d", s.URL, p.ID+100), bob, nil)
	assertError(t, r, http.StatusNotFound, "not_found", "")
}

// assertError checks status, a JSON body with the code, and the field when given.
func assertError(t *testing.T, r *response, status int, code, field string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status: got %d %s, want %d", r.Status, r.Body, status)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json (body %q)", ct, r.Body)
	}
	var e struct {
		Code  string `json:"code"`
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Errorf("error body %q is not JSON: %v", r.Body, err)
		return
	}
	if e.Code != code || e.Error == "" || e.Field != field {
		t.Errorf("error: got code=%q field=%q error=%q, want code=%q field=%q", e.Code, e.Field, e.Error, code, field)
	}
}

func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestBadInput(t *testing.T) {
	s := newServer(t)
	alice := token(t, "alice")
	p := createPost(t, s, alice, "Existing", "Post")
	postURL := fmt.Sprintf("/api/posts/%d", p.ID)

	expired, _, _ := testJWT.Issue("alice", 1, time.Now().Add(-time.Hour))
	otherKey := testJWT
	otherKey.Secret = []byte("another-secret-another-secret-0123456789")
	forged, _, _ := otherKey.Issue("alice", 1, time.Now())
	wrongAud := testJWT
	wrongAud.Audience = "someone-else"
	foreign, _, _ := wrongAud.Issue("alice", 1, time.Now())

	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		code   string
		field  string
	}{
		{"non-numeric id", "GET", "/api/posts/abc", "", nil, 404, "not_found", ""},
		{"zero id", "GET", "/api/posts/0", "", nil, 404, "not_found", ""},
		{"negative id", "GET", "/api/posts/-3", "", nil, 404, "not_found", ""},
		{"id overflow", "GET", "/api/posts/99999999999999999999", "", nil, 404, "not_found", ""},
		{"unknown id", "GET", "/api/posts/424242", "", nil, 404, "not_found", ""},
		{"non-numeric limit", "GET", "/api/posts?limit=ten", "", nil, 400, "validation_failed", "limit"},
		{"zero limit", "GET", "/api/posts?limit=0", "", nil, 400, "validation_failed", "limit"},
		{"negative limit", "GET", "/api/posts?limit=-1", "", nil, 400, "validation_failed", "limit"},
		{"garbage cursor", "GET", "/api/posts?cursor=%21%21%21", "", nil, 400, "validation_failed", "cursor"},
		{"cursor without prefix", "GET", "/api/posts?cursor=" + cursorOf("12"), "", nil, 400, "validation_failed", "cursor"},
		{"cursor not a number", "GET", "/api/posts?cursor=" + cursorOf("p1:12x"), "", nil, 400, "validation_failed", "cursor"},
		{"cursor zero", "GET", "/api/posts?cursor=" + cursorOf("p1:0"), "", nil, 400, "validation_failed", "cursor"},
		{"cursor too long", "GET", "/api/posts?cursor=" + strings.Repeat("A", 100), "", nil, 400, "validation_failed", "cursor"},
		{"create without token", "POST", "/api/posts", "", map[string]string{"title": "t", "content": "c"}, 401, "unauthorized", ""},
		{"create with expired token", "POST", "/api/posts", expired, map[string]string{"title": "t", "content": "c"}, 401, "unauthorized", ""},
		{"create with forged token", "POST", "/api/posts", forged, map[string]string{"title": "t", "content": "c"}, 401, "unauthorized", ""},
		{"create with wrong audience", "POST", "/api/posts", foreign, map[string]string{"title": "t", "content": "c"}, 401, "unauthorized", ""},
		{"create with junk token", "POST", "/api/posts", "not.a.jwt", map[string]string{"title": "t", "content": "c"}, 401, "unauthorized", ""},
		{"malformed JSON", "POST", "/api/posts", alice, `{"title": "t",`, 400, "invalid_json", ""},
		{"not an object", "POST", "/api/posts", alice, `["t"]`, 400, "invalid_json", ""},
		{"empty body", "POST", "/api/posts", alice, ``, 400, "invalid_json", ""},
		{"trailing data", "POST", "/api/posts", alice, `{"title":"t","content":"c"} {}`, 400, "invalid_json", ""},
		{"unknown field", "POST", "/api/posts", alice, map[string]string{"title": "t", "content": "c", "author": "bob"}, 400, "validation_failed", "author"},
		{"title wrong type", "POST", "/api/posts", alice, map[string]any{"title": 7, "content": "c"}, 400, "validation_failed", "title"},
		{"missing title", "POST", "/api/posts", alice, map[string]string{"content": "c"}, 400, "validation_failed", "title"},
		{"missing content", "POST", "/api/posts", alice, map[string]string{"title": "t"}, 400, "validation_failed", "content"},
		{"blank title", "POST", "/api/posts", alice, map[string]string{"title": "   ", "content": "c"}, 400, "validation_failed", "title"},
		{"title too long", "POST", "/api/posts", alice, map[string]string{"title": long(201), "content": "c"}, 400, "validation_failed", "title"},
		{"title with newline", "POST", "/api/posts", alice, map[string]string{"title": "a\nb", "content": "c"}, 400, "validation_failed", "title"},
		{"blank content", "POST", "/api/posts", alice, map[string]string{"title": "t", "content": " \n\t"}, 400, "validation_failed", "content"},
		{"content too long", "POST", "/api/posts", alice, map[string]string{"title": "t", "content": strings.Repeat("a", 20001)}, 400, "validation_failed", "content"},
		{"content with NUL", "POST", "/api/posts", alice, map[string]string{"title": "t", "content": "a\x00b"}, 400, "validation_failed", "content"},
		{"body over 64 KiB", "POST", "/api/posts", alice, `{"title":"t","content":"` + strings.Repeat("a", 70000) + `"}`, 413, "payload_too_large", ""},
		{"patch without token", "PATCH", postURL, "", map[string]string{"title": "t"}, 401, "unauthorized", ""},
		{"patch non-numeric id", "PATCH", "/api/posts/x1", alice, map[string]string{"title": "t"}, 404, "not_found", ""},
		{"patch nothing", "PATCH", postURL, alice, map[string]string{}, 400, "validation_failed", ""},
		{"patch unknown field", "PATCH", postURL, alice, map[string]string{"id": "9"}, 400, "validation_failed", "id"},
		{"patch blank title", "PATCH", postURL, alice, map[string]string{"title": ""}, 400, "validation_failed", "title"},
		{"patch content too long", "PATCH", postURL, alice, map[string]string{"content": strings.Repeat("a", 20001)}, 400, "validation_failed", "content"},
		{"patch unknown id", "PATCH", "/api/posts/424242", alice, map[string]string{"title": "t"}, 404, "not_found", ""},
		{"delete without token", "DELETE", postURL, "", nil, 401, "unauthorized", ""},
		{"delete non-numeric id", "DELETE", "/api/posts/1.5", alice, nil, 404, "not_found", ""},
		{"delete unknown id", "DELETE", "/api/posts/424242", alice, nil, 404, "not_found", ""},
		{"method not allowed", "PUT", postURL, alice, map[string]string{"title": "t"}, 405, "method_not_allowed", ""},
		{"method not allowed on list", "DELETE", "/api/posts", alice, nil, 405, "method_not_allowed", ""},
		{"unknown route", "GET", "/api/nothing", "", nil, 404, "not_found", ""},
		{"unknown SPA file", "GET", "/blog/missing.js", "", nil, 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, s.URL+tt.path, tt.token, tt.body)
			assertError(t, r, tt.status, tt.code, tt.field)
		})
	}

	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/posts", strings.NewReader("title=t"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+alice)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertError(t, &response{resp.StatusCode, resp.Header, body}, 415, "unsupported_media_type", "")
	})
	t.Run("401 names the scheme", func(t *testing.T) {
		r := do(t, http.MethodPost, s.URL+"/api/posts", "", map[string]string{"title": "t", "content": "c"})
		if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate: got %q, want Bearer", got)
		}
	})

	// Nothing above changed the existing post or created one.
	var got posts.Post
	do(t, http.MethodGet, s.URL+postURL, "", nil).decode(t, &got)
	if !samePost(got, p) {
		t.Errorf("post changed by bad requests: got %+v, want %+v", got, p)
	}
	if n, _ := s.Store.Count(context.Background()); n != 1 {
		t.Errorf("posts after bad requests: got %d, want 1", n)
	}
}

func TestBoundariesAreAccepted(t *testing.T) {
	s := newServer(t)
	alice := token(t, "alice")
	// Characters, not bytes: 200 two-byte characters are a valid title.
	title := strings.Repeat("é", posts.MaxTitleChars)
	content := strings.Repeat("a", posts.MaxContentChars)
	p := createPost(t, s, alice, title, content)
	if p.Title != title || len(p.Content) != posts.MaxContentChars {
		t.Errorf("boundary post: title %d chars, content %d bytes", len([]rune(p.Title)), len(p.Content))
	}
	r := do(t, http.MethodPatch, fmt.Sprintf("%s/api/posts/%d", s.URL, p.ID), alice, map[string]string{"title": "x"})
	if r.Status != http.StatusOK {
		t.Errorf("one-character title: got %d %s, want 200", r.Status, r.Body)
	}
}

func TestLimitDefaultAndClamp(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	for i := 0; i < pagination.MaxLimit+5; i++ {
		if _, err := s.Store.Create(ctx, "alice", fmt.Sprintf("p%d", i), "c"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		query string
		want  int
	}{
		{"", pagination.DefaultLimit},
		{"?limit=3", 3},
		{"?limit=100", 100},
		{"?limit=1000", pagination.MaxLimit},
		{"?limit=99999999999999999999999", pagination.MaxLimit},
	}
	for _, tt := range tests {
		var pg page
		r := do(t, http.MethodGet, s.URL+"/api/posts"+tt.query, "", nil)
		r.decode(t, &pg)
		if r.Status != http.StatusOK || len(pg.Items) != tt.want || pg.NextCursor == nil {
			t.Errorf("list%s: got %d with %d items (next %v), want 200 with %d and a next cursor", tt.query, r.Status, len(pg.Items), pg.NextCursor, tt.want)
		}
	}
}

// TestPaginationWalkWhileCreating walks every page over HTTP while other
// clients create posts: each post that existed when the walk began comes
// back exactly once, nothing comes back twice, and the order is newest first.
func TestPaginationWalkWhileCreating(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	const initial = 250
	existing := map[int64]bool{}
	for i := 0; i < initial; i++ {
		p, err := s.Store.Create(ctx, "alice", fmt.Sprintf("seed %d", i), "c")
		if err != nil {
			t.Fatal(err)
		}
		existing[p.ID] = true
	}

	bob := token(t, "bob")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdDuring := 0
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400; i++ { // bounded even if the walk never ends
				select {
				case <-stop:
					return
				default:
				}
				r, err := try(http.MethodPost, s.URL+"/api/posts", bob, map[string]string{"title": "during the walk", "content": "c"})
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("concurrent create: %v %v", err, r)
					return
				}
				mu.Lock()
				createdDuring++
				mu.Unlock()
			}
		}()
	}

	seen := map[int64]int{}
	last := int64(1 << 62)
	next := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("walk does not end")
		}
		url := s.URL + "/api/posts?limit=9"
		if next != "" {
			url += "&cursor=" + next
		}
		var pg page
		r := do(t, http.MethodGet, url, "", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, r.Status, r.Body)
		}
		r.decode(t, &pg)
		for _, p := range pg.Items {
			seen[p.ID]++
			if p.ID >= last {
				t.Errorf("page %d: id %d after %d, want strictly decreasing ids", pages, p.ID, last)
			}
			last = p.ID
		}
		if pg.NextCursor == nil {
			break
		}
		next = *pg.NextCursor
		time.Sleep(time.Millisecond) // let the writers interleave with the walk
	}
	close(stop)
	wg.Wait()

	for id := range existing {
		if seen[id] != 1 {
			t.Errorf("post %d existed before the walk and was returned %d times, want 1", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("post %d returned %d times", id, n)
		}
	}
	if createdDuring == 0 {
		t.Error("no post was created during the walk: the test proved nothing")
	}
}

func TestStatsAndReadiness(t *testing.T) {
	s := newServer(t)
	alice := token(t, "alice")
	for i := 0; i < 3; i++ {
		createPost(t, s, alice, "t", "c")
	}
	var st struct {
		Service  string `json:"service"`
		Posts    *int64 `json:"posts"`
		Database struct {
			Status string `json:"status"`
		} `json:"database"`
		Requests struct {
			Requests int64 `json:"requests"`
		} `json:"requests"`
	}
	do(t, http.MethodGet, s.URL+"/stats", "", nil).decode(t, &st)
	if st.Service != "blog-service" || st.Posts == nil || *st.Posts != 3 || st.Database.Status != "ONLINE" || st.Requests.Requests < 3 {
		t.Errorf("stats: got service=%q posts=%v database=%q requests=%d, want blog-service 3 ONLINE >=3",
			st.Service, st.Posts, st.Database.Status, st.Requests.Requests)
	}
	if r := do(t, http.MethodGet, s.URL+"/readyz", "", nil); r.Status != http.StatusOK {
		t.Errorf("readyz: got %d, want 200", r.Status)
	}

	// The database goes away: /stats says so (live, not cached), readiness fails.
	s.Store.Close()
	st.Posts = nil
	do(t, http.MethodGet, s.URL+"/stats", "", nil).decode(t, &st)
	if st.Database.Status != "OFFLINE" || st.Posts != nil {
		t.Errorf("stats with the database closed: got database=%q posts=%v, want OFFLINE and null", st.Database.Status, st.Posts)
	}
	if r := do(t, http.MethodGet, s.URL+"/readyz", "", nil); r.Status != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database closed: got %d, want 503", r.Status)
	}
	// And a request that needs it is a JSON 500, not a hang or a crash.
	assertError(t, do(t, http.MethodGet, s.URL+"/api/posts", "", nil), 500, "internal", "")
}

func TestSPAIsServed(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		path, contentType, contains string
	}{
		{"/blog/", "text/html", `src="app.js"`},
		{"/blog/app.js", "text/javascript", "textContent"},
		{"/blog/api.js", "text/javascript", "/api/posts"},
		{"/blog/session.js", "text/javascript", "sessionStorage"},
		{"/blog/style.css", "text/css", "body"},
	}
	for _, tt := range tests {
		r := do(t, http.MethodGet, s.URL+tt.path, "", nil)
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), tt.contentType) || !bytes.Contains(r.Body, []byte(tt.contains)) {
			t.Errorf("GET %s: got %d %q, want 200 %s containing %q", tt.path, r.Status, r.Header.Get("Content-Type"), tt.contentType, tt.contains)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
		}
	}
	// The app never parses data as HTML.
	for _, f := range []string{"/blog/app.js", "/blog/api.js", "/blog/session.js"} {
		body := do(t, http.MethodGet, s.URL+f, "", nil).Body
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if bytes.Contains(body, []byte(bad)) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}

// TestWritesVisibleAtOnce: with the read cache on (the default) and off,
// a create, an update and a delete show in the very next read of the post
// and of the list, which were read (and so cached) just before.
func TestWritesVisibleAtOnce(t *testing.T) {
	for _, mode := range []struct {
		name  string
		cache *posts.Cache
	}{{"cache", posts.NewCache(4096, 32<<20)}, {"nocache", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			s := newServerWith(t, mode.cache)
			alice := token(t, "alice")
			first := createPost(t, s, alice, "first", "c")
			list := func() []posts.Post {
				var pg page
				do(t, http.MethodGet, s.URL+"/api/posts?limit=5", "", nil).decode(t, &pg)
				return pg.Items
			}
			get := func(id int64) *response {
				return do(t, http.MethodGet, s.URL+"/api/posts/"+strconv.FormatInt(id, 10), "", nil)
			}
			for range 2 { // the second round is served from the cache, when on
				if items := list(); len(items) != 1 || items[0].Title != "first" {
					t.Fatalf("list: %+v", items)
				}
				if r := get(first.ID); r.Status != http.StatusOK {
					t.Fatalf("get: %d", r.Status)
				}
			}

			second := createPost(t, s, alice, "second", "c")
			if items := list(); len(items) != 2 || items[0].ID != second.ID {
				t.Errorf("list right after a create: %+v, want the new post first", items)
			}

			r := do(t, http.MethodPatch, s.URL+"/api/posts/"+strconv.FormatInt(first.ID, 10), alice, map[string]string{"title": "edited"})
			if r.Status != http.StatusOK {
				t.Fatalf("update: %d %s", r.Status, r.Body)
			}
			var p posts.Post
			get(first.ID).decode(t, &p)
			if p.Title != "edited" {
				t.Errorf("get right after an update: title %q, want edited", p.Title)
			}
			if items := list(); len(items) != 2 || items[1].Title != "edited" {
				t.Errorf("list right after an update: %+v", items)
			}

			if r := do(t, http.MethodDelete, s.URL+"/api/posts/"+strconv.FormatInt(first.ID, 10), alice, nil); r.Status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
			assertError(t, get(first.ID), http.StatusNotFound, "not_found", "")
			if items := list(); len(items) != 1 || items[0].ID != second.ID {
				t.Errorf("list right after a delete: %+v", items)
			}
			if n, _ := mode.cache.Len(); (mode.cache != nil) != (n > 0) {
				t.Errorf("%d entries cached, want some exactly when the cache is on", n)
			}
		})
	}
}

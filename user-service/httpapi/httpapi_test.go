package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"titanium/platform/jwtauth"
	"titanium/platform/service"
	"titanium/platform/sqlitedb"
	"titanium/platform/throttle"
	"titanium/user-service/cache"
	"titanium/user-service/internal/redistest"
	"titanium/user-service/password"
	"titanium/user-service/store"
	"titanium/user-service/users"
)

var testJWT = jwtauth.Config{
	Secret:   []byte("0123456789abcdef0123456789abcdef-test"),
	Issuer:   "titanium-auth",
	Audience: "titanium",
	TTL:      time.Minute,
	Leeway:   time.Second,
}

type env struct {
	handler  http.Handler
	internal http.Handler // the internal listener's routes
	cache    *cache.Cache
	svc      *users.Service
	reg      Registration
}

// newEnv wires the real service: SQLite in a temp dir, the given Redis
// ("" for none), bcrypt at the given cost.
func newEnv(tb testing.TB, redisAddr string, cost int, reg ...Registration) *env {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache.RouteLibraryLogs(logger)
	st, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "users.db"), sqlitedb.SyncNormal)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	hasher, err := password.New(cost, 0, time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{}
	if len(reg) > 0 {
		e.reg = reg[0]
	}
	var c users.Cache
	if redisAddr != "" {
		e.cache = cache.New(cache.Config{Addr: redisAddr, TTL: time.Minute}, logger)
		tb.Cleanup(func() { e.cache.Close() })
		c = e.cache
	}
	e.svc = users.NewService(st, c, hasher, logger)
	srv := service.New("user-service", service.Config{Instance: "test"}, logger)
	srv.SetInternal("127.0.0.1:0")
	New(e.svc, testJWT, e.reg, logger).Routes(srv)
	e.handler = srv.Handler()
	e.internal = srv.InternalHandler()
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d: body %q is not a JSON object: %v", r.status, r.body, err)
	}
	return m
}

func (e *env) do(method, path, body string, headers ...string) response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h := e.handler
	if strings.HasPrefix(path, "/internal/") {
		h = e.internal // as auth-service calls it: on the internal listener
	}
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// The internal authenticate call is not on the public port (which
// monitoring reaches for /metrics), and the internal listener serves
// nothing else.
func TestInternalRoutesOnTheirOwnListener(t *testing.T) {
	e := newEnv(t, "", bcrypt.MinCost)
	register(t, e, "alice")
	body := `{"username":"alice","password":"password-alice"}`
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, httptest.NewRequest("POST", "/internal/authenticate", strings.NewReader(body)))
	if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("public port, /internal/authenticate: %d %s, want 404", rec.Code, rec.Body)
	}
	if r := e.do("POST", "/internal/authenticate", body); r.status != 200 {
		t.Errorf("internal listener, /internal/authenticate: %d %s, want 200", r.status, r.body)
	}
	for _, path := range []string{"/metrics", "/stats", "/api/users"} {
		rec := httptest.NewRecorder()
		e.internal.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("internal listener, GET %s: %d, want 404", path, rec.Code)
		}
	}
}

func register(t *testing.T, e *env, name string) map[string]any {
	t.Helper()
	r := e.do("POST", "/api/users", fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password":"password-%s"}`, name, name, name))
	if r.status != http.StatusCreated {
		t.Fatalf("register %s: got %d %s, want 201", name, r.status, r.body)
	}
	return r.json(t)
}

func TestRegisterValidation(t *testing.T) {
	e := newEnv(t, "", bcrypt.MinCost)
	u := register(t, e, "alice")
	if _, ok := u["password"]; ok {
		t.Error("response carries a password field")
	}
	if u["email"] != "alice@example.com" || u["id"] == nil || u["created_at"] == nil {
		t.Errorf("created user: got %v", u)
	}
	tests := []struct {
		name       string
		body       string
		ctype      string
		wantStatus int
		wantField  string
	}{
		{"duplicate username", `{"username":"alice","email":"x@example.com","password":"password1"}`, "", 409, "username"},
		{"duplicate username other case", `{"username":"ALICE","email":"x@example.com","password":"password1"}`, "", 409, "username"},
		{"duplicate email", `{"username":"bob","email":"Alice@Example.com","password":"password1"}`, "", 409, "email"},
		{"missing username", `{"email":"x@example.com","password":"password1"}`, "", 400, "username"},
		{"bad username", `{"username":"a b","email":"x@example.com","password":"password1"}`, "", 400, "username"},
		{"missing email", `{"username":"bob","password":"password1"}`, "", 400, "email"},
		{"bad email", `{"username":"bob","email":"Bob <b@example.com>","password":"password1"}`, "", 400, "email"},
		{"missing password", `{"username":"bob","email":"b@example.com"}`, "", 400, "password"},
		{"short password", `{"username":"bob","email":"b@example.com","password":"short"}`, "", 400, "password"},
		{"73-byte password", `{"username":"bob","email":"b@example.com","password":"` + strings.Repeat("p", 73) + `"}`, "", 400, "password"},
		{"wrong type", `{"username":1,"email":"b@example.com","password":"password1"}`, "", 400, "username"},
		{"unknown field", `{"username":"bob","email":"b@example.com","password":"password1","admin":true}`, "", 400, "admin"},
		{"bad JSON", `{"username":`, "", 400, ""},
		{"empty body", ``, "application/json", 400, ""},
		{"not an object", `[1,2]`, "", 400, ""},
		{"trailing data", `{"username":"bob","email":"b@example.com","password":"password1"} {}`, "", 400, ""},
		{"not JSON content type", `username=bob`, "application/x-www-form-urlencoded", 415, ""},
		{"over 1 MiB", `{"username":"` + strings.Repeat("a", 1<<20+10) + `"}`, "", 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.ctype != "" {
				hdr = []string{"Content-Type", tt.ctype}
			}
			r := e.do("POST", "/api/users", tt.body, hdr...)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			m := r.json(t)
			if m["error"] == nil || m["code"] == nil {
				t.Errorf("error body lacks error/code: %v", m)
			}
			if tt.wantField != "" && m["field"] != tt.wantField {
				t.Errorf("field: got %v, want %s", m["field"], tt.wantField)
			}
		})
	}
}

func TestReadsAndList(t *testing.T) {
	r := redistest.Start(t)
	e := newEnv(t, r.Addr, bcrypt.MinCost)
	var ids []float64
	for _, n := range []string{"user1", "user2", "user3", "user4", "user5"} {
		ids = append(ids, register(t, e, n)["id"].(float64))
	}
	for _, path := range []string{"/api/users/1", "/api/users/1", "/api/users/by-username/USER1", "/api/users/by-username/user1"} {
		res := e.do("GET", path, "")
		if res.status != 200 || res.json(t)["username"] != "user1" {
			t.Errorf("GET %s: got %d %s", path, res.status, res.body)
		}
	}
	if st := e.cache.Stats(context.Background()); st["hits"].(int64) < 2 {
		t.Errorf("repeated reads did not hit the cache: %v", st)
	}
	for _, path := range []string{"/api/users/999", "/api/users/abc", "/api/users/-1", "/api/users/by-username/nobody", "/api/users/by-username/x"} {
		if res := e.do("GET", path, ""); res.status != 404 {
			t.Errorf("GET %s: got %d, want 404", path, res.status)
		}
	}

	var got []float64
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		res := e.do("GET", "/api/users?limit=2&cursor="+cursor, "")
		if res.status != 200 {
			t.Fatalf("list: %d %s", res.status, res.body)
		}
		var page struct {
			Items []struct {
				ID float64 `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		json.Unmarshal(res.body, &page)
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if page.NextCursor == nil { // null on the last page
			break
		}
		cursor = *page.NextCursor
	}
	if !slices.Equal(got, ids) {
		t.Errorf("list over pages: got %v, want %v", got, ids)
	}
	// MQ is "1" without a version: the cursor format before it had one.
	for _, q := range []string{"limit=0", "limit=x", "cursor=!!!", "cursor=bm9wZQ", "cursor=MQ"} {
		if res := e.do("GET", "/api/users?"+q, ""); res.status != 400 {
			t.Errorf("list ?%s: got %d, want 400", q, res.status)
		}
	}
	if res := e.do("GET", "/api/users?limit=1000", ""); res.status != 200 {
		t.Errorf("limit over the cap is clamped: got %d", res.status)
	}
}

// An e-mail address is shown to its owner only: not without a token, not
// with a bad one, not to another user, in the list and single reads alike.
func TestEmailOnlyForItsOwner(t *testing.T) {
	e := newEnv(t, "", bcrypt.MinCost)
	register(t, e, "alice")
	register(t, e, "bob")
	alice, bob := bearer(t, 1, "alice"), bearer(t, 2, "bob")
	for _, path := range []string{"/api/users/1", "/api/users/by-username/alice"} {
		for _, tt := range []struct {
			name, auth, want string
		}{
			{"anonymous", "", ""},
			{"bad token", "Bearer abc.def.ghi", ""},
			{"another user", bob, ""},
			{"the owner", alice, "alice@example.com"},
		} {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			res := e.do("GET", path, "", hdr...)
			m := res.json(t)
			if got, _ := m["email"].(string); res.status != 200 || got != tt.want {
				t.Errorf("GET %s as %s: %d email %q, want %q", path, tt.name, res.status, got, tt.want)
			}
		}
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(e.do("GET", "/api/users", "", "Authorization", alice).body, &page); err != nil || len(page.Items) != 2 {
		t.Fatalf("list: %v %v", err, page)
	}
	if page.Items[0]["email"] != "alice@example.com" || page.Items[1]["email"] != nil {
		t.Errorf("list as alice: %v, want her e-mail only", page.Items)
	}
}

func bearer(t *testing.T, id int64, name string) string {
	t.Helper()
	tok, _, err := testJWT.Issue(name, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func TestUpdate(t *testing.T) {
	r := redistest.Start(t)
	e := newEnv(t, r.Addr, bcrypt.MinCost)
	register(t, e, "alice")
	register(t, e, "bob")
	// Warm the cache so the update must invalidate it.
	e.do("GET", "/api/users/1", "")
	e.do("GET", "/api/users/by-username/alice", "")

	tests := []struct {
		name   string
		auth   string
		path   string
		body   string
		status int
	}{
		{"no token", "", "/api/users/1", `{"email":"a2@example.com"}`, 401},
		{"garbage token", "Bearer abc.def.ghi", "/api/users/1", `{"email":"a2@example.com"}`, 401},
		{"someone else's account", bearer(t, 2, "bob"), "/api/users/1", `{"email":"a2@example.com"}`, 403},
		{"nothing to change", bearer(t, 1, "alice"), "/api/users/1", `{}`, 400},
		{"bad email", bearer(t, 1, "alice"), "/api/users/1", `{"email":"nope"}`, 400},
		{"taken email", bearer(t, 1, "alice"), "/api/users/1", `{"email":"bob@example.com"}`, 409},
		{"too long password", bearer(t, 1, "alice"), "/api/users/1", `{"password":"` + strings.Repeat("x", 100) + `"}`, 400},
		{"new password without the current one", bearer(t, 1, "alice"), "/api/users/1", `{"password":"new-password"}`, 400},
		{"new password, current one empty", bearer(t, 1, "alice"), "/api/users/1", `{"password":"new-password","current_password":""}`, 400},
		{"new password, current one wrong", bearer(t, 1, "alice"), "/api/users/1", `{"password":"new-password","current_password":"guess-1234"}`, 403},
		{"own account", bearer(t, 1, "alice"), "/api/users/1", `{"email":"a2@example.com","password":"new-password","current_password":"password-alice"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			res := e.do("PATCH", tt.path, tt.body, hdr...)
			if res.status != tt.status {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tt.status)
			}
			res.json(t)
		})
	}
	for _, path := range []string{"/api/users/1", "/api/users/by-username/alice"} {
		if got := e.do("GET", path, "", "Authorization", bearer(t, 1, "alice")).json(t)["email"]; got != "a2@example.com" {
			t.Errorf("GET %s after update: email %v, want a2@example.com (stale cache?)", path, got)
		}
	}
	if res := e.do("POST", "/internal/authenticate", `{"username":"alice","password":"new-password"}`); res.status != 200 {
		t.Errorf("login with the new password: %d %s", res.status, res.body)
	}
}

// TestAuthenticateSameAnswer: an unknown user and a wrong password get the
// same body, and both pay for a bcrypt comparison.
func TestAuthenticateSameAnswer(t *testing.T) {
	e := newEnv(t, "", 6) // ~4 ms a hash: far above a lookup, cheap under -race
	register(t, e, "alice")
	ok := e.do("POST", "/internal/authenticate", `{"username":"alice","password":"password-alice"}`)
	if ok.status != 200 || ok.json(t)["username"] != "alice" || ok.json(t)["id"] != 1.0 {
		t.Fatalf("right password: got %d %s", ok.status, ok.body)
	}
	timed := func(body string) (response, time.Duration) {
		var ds []time.Duration
		var r response
		for i := 0; i < 5; i++ {
			start := time.Now()
			r = e.do("POST", "/internal/authenticate", body)
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return r, ds[len(ds)/2]
	}
	wrong, dWrong := timed(`{"username":"alice","password":"wrong-password"}`)
	unknown, dUnknown := timed(`{"username":"nobody","password":"wrong-password"}`)
	if wrong.status != 401 || unknown.status != 401 || !bytes.Equal(wrong.body, unknown.body) {
		t.Errorf("answers differ: wrong password %d %s, unknown user %d %s", wrong.status, wrong.body, unknown.status, unknown.body)
	}
	// Without the dummy comparison the unknown user would take ~0.1 ms
	// against ~50 ms: a ratio far outside this generous band.
	if ratio := float64(dUnknown) / float64(dWrong); ratio < 0.3 || ratio > 3 {
		t.Errorf("timing differs: unknown user %v, wrong password %v", dUnknown, dWrong)
	}
	for _, body := range []string{`{"username":"","password":"x"}`, `{"username":"alice","password":"` + strings.Repeat("x", 80) + `"}`} {
		if r := e.do("POST", "/internal/authenticate", body); r.status != 401 || !bytes.Equal(r.body, wrong.body) {
			t.Errorf("%s: got %d %s, want the same 401", body, r.status, r.body)
		}
	}
}

// TestRedisDownStillServes: no Redis at all, every route still answers.
func TestRedisDownStillServes(t *testing.T) {
	e := newEnv(t, "127.0.0.1:1", bcrypt.MinCost)
	register(t, e, "alice")
	for i := 0; i < 20; i++ {
		if r := e.do("GET", "/api/users/1", ""); r.status != 200 {
			t.Fatalf("read without redis: %d %s", r.status, r.body)
		}
	}
	if st := e.cache.Stats(context.Background()); st["status"] != "OFFLINE" {
		t.Errorf("cache status without redis: %v", st["status"])
	}
}

// fuzzBody asserts the invariant of every JSON handler: no 5xx, and a JSON body.
func fuzzBody(t *testing.T, e *env, method, path string, body []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s with %q: status %d %s", method, path, body, rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s with %q: status %d, non-JSON body %q", method, path, body, rec.Code, rec.Body)
	}
}

var fuzzSeeds = []string{
	`{"username":"alice","email":"alice@example.com","password":"password1"}`,
	`{"username":"alice","email":"alice@example.com","password":"password1"} x`,
	`{"username":"a","email":"@","password":""}`,
	`{"username":null,"email":[],"password":{}}`,
	`{"username":"ü̈ser","email":"a@b.c","password":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}`,
	`{"password":"` + strings.Repeat("é", 40) + `"}`,
	`{`, ``, `null`, `"str"`, `[]`, `{"admin":true}`,
}

// FuzzRegister: POST /api/users never answers 5xx and always answers JSON.
func FuzzRegister(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	e := newEnv(f, "", bcrypt.MinCost)
	f.Fuzz(func(t *testing.T, body []byte) { fuzzBody(t, e, "POST", "/api/users", body) })
}

// FuzzAuthenticate: POST /internal/authenticate, same invariant.
func FuzzAuthenticate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	e := newEnv(f, "", bcrypt.MinCost)
	f.Fuzz(func(t *testing.T, body []byte) { fuzzBody(t, e, "POST", "/internal/authenticate", body) })
}

// Registrations are throttled per client address, and a taken username is
// refused before any bcrypt hash, so that replaying one costs nothing.
func TestRegistrationThrottleAndCheapDuplicates(t *testing.T) {
	e := newEnv(t, "", 8, Registration{PerIP: throttle.New(1, 3, 100)})
	body := func(name string) string {
		return fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password":"password-%s"}`, name, name, name)
	}
	start := time.Now()
	if r := e.do("POST", "/api/users", body("alice")); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	hashed := time.Since(start)
	start = time.Now()
	if r := e.do("POST", "/api/users", body("ALICE")); r.status != 409 {
		t.Fatalf("taken name: %d %s, want 409", r.status, r.body)
	}
	if d := time.Since(start); d > hashed/4 {
		t.Errorf("taken name answered in %v, a registration with its hash took %v: the hash came first", d, hashed)
	}
	if r := e.do("POST", "/api/users", body("bob")); r.status != 201 {
		t.Fatalf("third registration: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/api/users", body("carol"))
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.json(t)["code"] != "rate_limited" {
		t.Fatalf("fourth registration from one address: %d %s, want 429 with Retry-After", r.status, r.body)
	}
	req := httptest.NewRequest("POST", "/api/users", strings.NewReader(body("carol")))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "203.0.113.5:4000"
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Errorf("registration from another address: %d %s, want 201", rec.Code, rec.Body)
	}
}

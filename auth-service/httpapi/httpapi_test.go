package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"titanium/auth-service/userclient"
	"titanium/platform/clientip"
	"titanium/platform/jwtauth"
	"titanium/platform/service"
	"titanium/platform/throttle"
)

var testJWT = jwtauth.Config{
	Secret:   []byte("0123456789abcdef0123456789abcdef-auth-test"),
	Issuer:   "titanium-auth",
	Audience: "titanium",
	TTL:      15 * time.Minute,
	Leeway:   time.Second,
}

type limits struct{ ipBurst, accountBurst int }

var roomy = limits{ipBurst: 1000, accountBurst: 1000}

// newHandler wires the real handler chain over the given user-service URLs.
func newHandler(tb testing.TB, urls []string, l limits) http.Handler {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	users, err := userclient.New(urls, logger)
	if err != nil {
		tb.Fatal(err)
	}
	trusted, err := clientip.ParseTrusted(strings.Split(clientip.DefaultTrusted, ","))
	if err != nil {
		tb.Fatal(err)
	}
	srv := service.New("auth-service", service.Config{Instance: "test"}, logger)
	New(users, testJWT, Limits{
		PerIP:      throttle.New(1, l.ipBurst, 10_000),
		PerAccount: throttle.New(1, l.accountBurst, 10_000),
	}, trusted, logger).Routes(srv)
	return srv.Handler()
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

// do sends a request from remote (host:port) through h.
func do(h http.Handler, method, path, body, remote string, headers ...string) response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

const local = "127.0.0.1:40000"

func login(h http.Handler, user, pass, remote string, headers ...string) response {
	return do(h, "POST", "/api/auth/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass), remote, headers...)
}

func TestLoginThenVerify(t *testing.T) {
	us := startUserService(t)
	registerUser(t, us.public, "alice", "alice-password")
	h := newHandler(t, []string{us.internal}, roomy)

	r := login(h, "alice", "alice-password", local)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var lr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	json.Unmarshal(r.body, &lr)
	if lr.AccessToken == "" || lr.TokenType != "Bearer" || lr.ExpiresIn != int64(testJWT.TTL.Seconds()) {
		t.Fatalf("login answer: got %+v", lr)
	}
	claims, err := testJWT.Verify(lr.AccessToken)
	if err != nil || claims.Subject != "alice" || claims.UserID != 1 {
		t.Fatalf("issued token: %+v %v", claims, err)
	}

	for _, v := range []struct {
		name, method, body string
		headers            []string
	}{
		{"GET with header", "GET", "", []string{"Authorization", "Bearer " + lr.AccessToken}},
		{"POST with body", "POST", `{"token":"` + lr.AccessToken + `"}`, nil},
		{"POST with header", "POST", "", []string{"Authorization", "bearer " + lr.AccessToken}},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := do(h, v.method, "/api/auth/verify", v.body, local, v.headers...)
			m := r.json(t)
			if r.status != 200 || m["valid"] != true || m["sub"] != "alice" || m["exp"] == nil {
				t.Errorf("got %d %v", r.status, m)
			}
		})
	}

	wrong := login(h, "alice", "not-her-password", local)
	unknown := login(h, "nobody", "not-her-password", local)
	if wrong.status != 401 || unknown.status != 401 || !bytes.Equal(wrong.body, unknown.body) {
		t.Errorf("wrong password %d %s vs unknown user %d %s: want the same 401", wrong.status, wrong.body, unknown.status, unknown.body)
	}

	bad := []struct {
		name, body string
		status     int
		field      string
	}{
		{"missing username", `{"password":"x"}`, 400, "username"},
		{"missing password", `{"username":"alice"}`, 400, "password"},
		{"bad JSON", `{"username":`, 400, ""},
		{"unknown field", `{"username":"a","password":"b","x":1}`, 400, "x"},
		{"over 1 MiB", `{"username":"` + strings.Repeat("a", 1<<20) + `"}`, 413, ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := do(h, "POST", "/api/auth/login", tt.body, local)
			m := r.json(t)
			if r.status != tt.status || (tt.field != "" && m["field"] != tt.field) {
				t.Errorf("got %d %v, want %d field %q", r.status, m, tt.status, tt.field)
			}
		})
	}
	if r := do(h, "POST", "/api/auth/login", "username=a", local, "Content-Type", "text/plain"); r.status != 415 {
		t.Errorf("text body: got %d, want 415", r.status)
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifyRejects is the negative matrix: every one of these is the one
// 401 of every service (code unauthorized, a Bearer challenge), whether sent
// in the header or the body.
func TestVerifyRejects(t *testing.T) {
	h := newHandler(t, []string{"http://127.0.0.1:1"}, roomy)
	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"sub": "alice", "uid": 1, "iss": testJWT.Issuer, "aud": testJWT.Audience,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	if r := do(h, "GET", "/api/auth/verify", "", local, "Authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, testJWT.Secret, good())); r.status != 200 {
		t.Fatalf("control: a good token got %d %s", r.status, r.body)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good())
	tokens := []struct{ name, token string }{
		{"alg none", none},
		{"alg none, no trailing dot", strings.TrimSuffix(none, ".")},
		{"wrong key", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-12345"), good())},
		{"HS512 with the right key", sign(t, jwt.SigningMethodHS512, testJWT.Secret, good())},
		{"expired", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("exp", now.Add(-time.Hour).Unix()))},
		{"missing exp", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("exp", nil))},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("nbf", now.Add(time.Hour).Unix()))},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("iss", "someone-else"))},
		{"missing iss", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("iss", nil))},
		{"wrong aud", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("aud", "other-app"))},
		{"missing aud", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("aud", nil))},
		{"missing sub", sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("sub", nil))},
		{"garbage", "this-is-not-a-token"},
		{"garbage with dots", "a.b.c"},
		{"tampered payload", func() string {
			p := strings.Split(sign(t, jwt.SigningMethodHS256, testJWT.Secret, good()), ".")
			other := strings.Split(sign(t, jwt.SigningMethodHS256, testJWT.Secret, with("sub", "admin")), ".")
			return p[0] + "." + other[1] + "." + p[2]
		}()},
		{"100k dots", strings.Repeat(".", 100_000)},
		{"empty", ""},
	}
	for _, tt := range tokens {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"token": tt.token})
			start := time.Now()
			r := do(h, "POST", "/api/auth/verify", string(body), local)
			if m := r.json(t); r.status != 401 || m["code"] != "unauthorized" || m["error"] != "a valid bearer token is required" {
				t.Errorf("body: got %d %s, want the 401 unauthorized", r.status, r.body)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if len(tt.token) < 8000 {
				r = do(h, "GET", "/api/auth/verify", "", local, "Authorization", "Bearer "+tt.token)
				if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("header: got %d %s, want 401 with WWW-Authenticate", r.status, r.body)
				}
			}
		})
	}
	for _, hdr := range []string{"", "Basic YWxpY2U6eA==", "Bearer", "Bearer "} {
		if r := do(h, "GET", "/api/auth/verify", "", local, "Authorization", hdr); r.status != 401 {
			t.Errorf("Authorization %q: got %d, want 401", hdr, r.status)
		}
	}
}

func TestThrottlePerAccount(t *testing.T) {
	us := startUserService(t)
	registerUser(t, us.public, "alice", "alice-password")
	registerUser(t, us.public, "bob00", "bob-password")
	h := newHandler(t, []string{us.internal}, limits{ipBurst: 1000, accountBurst: 3})

	// Successful logins do not use up the account's budget.
	for i := 0; i < 5; i++ {
		if r := login(h, "alice", "alice-password", local); r.status != 200 {
			t.Fatalf("login %d: %d %s", i, r.status, r.body)
		}
	}
	const guesser = "198.51.100.1:1"
	for i := 0; i < 3; i++ {
		if r := login(h, "ALICE", "guess", guesser); r.status != 401 {
			t.Fatalf("guess %d: got %d, want 401", i, r.status)
		}
	}
	// From the guessing address, even with the right password: throttled.
	r := login(h, "alice", "alice-password", guesser)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.json(t)["code"] != "rate_limited" {
		t.Fatalf("4th attempt: got %d %s (Retry-After %q), want 429 with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	// The owner, from their own address, is not locked out: usernames are
	// public, so a bucket per account alone would let anyone lock anyone out.
	if r := login(h, "alice", "alice-password", "198.51.100.99:1"); r.status != 200 {
		t.Errorf("the owner from another address: got %d %s, want 200", r.status, r.body)
	}
	if r := login(h, "bob00", "bob-password", guesser); r.status != 200 {
		t.Errorf("another account from the guessing address: got %d, want 200", r.status)
	}
}

func TestThrottlePerAddress(t *testing.T) {
	us := startUserService(t)
	h := newHandler(t, []string{us.internal}, limits{ipBurst: 3, accountBurst: 1000})

	// A direct client that is not our proxy: its X-Forwarded-For is ignored,
	// so changing it does not buy new attempts.
	for i := 0; i < 3; i++ {
		r := login(h, fmt.Sprintf("user%d", i), "password", "203.0.113.5:1000", "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		if r.status != 401 {
			t.Fatalf("attempt %d: got %d %s, want 401", i, r.status, r.body)
		}
	}
	r := login(h, "user9", "password", "203.0.113.5:1001", "X-Forwarded-For", "10.9.9.9")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt from one address: got %d, want 429 with Retry-After", r.status)
	}
	// Behind our proxy, each client address has its own budget, and a
	// spoofed entry left of the proxy's does not change the address.
	for i := 0; i < 3; i++ {
		if r := login(h, "someone", "password", local, "X-Forwarded-For", "6.6.6."+fmt.Sprint(i)+", 198.51.100.7"); r.status != 401 {
			t.Fatalf("proxied attempt %d: got %d", i, r.status)
		}
	}
	if r := login(h, "someone", "password", local, "X-Forwarded-For", "1.2.3.4, 198.51.100.7"); r.status != 429 {
		t.Errorf("spoofed left entry reset the budget: got %d, want 429", r.status)
	}
	if r := login(h, "someone", "password", local, "X-Forwarded-For", "198.51.100.8"); r.status != 401 {
		t.Errorf("another client behind the proxy: got %d, want 401", r.status)
	}
}

func TestUserServiceFailover(t *testing.T) {
	us := startUserService(t)
	registerUser(t, us.public, "alice", "alice-password")
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))

	h := newHandler(t, []string{dead, us.internal}, roomy)
	for i := 0; i < 4; i++ { // round-robin starts on each instance in turn
		if r := login(h, "alice", "alice-password", local); r.status != 200 {
			t.Fatalf("login %d with one dead instance: %d %s", i, r.status, r.body)
		}
	}
	// USER_SERVICE_URL has the gateway's grammar: a dns+ name is one
	// instance per address (localhost may give ::1 too, where nothing
	// listens: the call goes again to 127.0.0.1).
	port := strings.TrimPrefix(us.internal, "http://127.0.0.1:")
	h = newHandler(t, []string{"dns+http://localhost:" + port}, roomy)
	for i := 0; i < 4; i++ {
		if r := login(h, "alice", "alice-password", local); r.status != 200 {
			t.Fatalf("login %d through dns+http://localhost:%s: %d %s", i, port, r.status, r.body)
		}
	}
	h = newHandler(t, []string{dead}, roomy)
	r := login(h, "alice", "alice-password", local)
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.json(t)["code"] != "service_unavailable" {
		t.Errorf("no user-service: got %d %s, want 503 JSON with Retry-After", r.status, r.body)
	}
}

// FuzzLogin: POST /api/auth/login never answers 5xx and always answers
// JSON, against a real user-service.
func FuzzLogin(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","password":"alice-password"}`,
		`{"username":"alice","password":"wrong"}`,
		`{"username":"` + strings.Repeat("a", 300) + `","password":"x"}`,
		`{"username":"a","password":"` + strings.Repeat("é", 80) + `"}`,
		`{"username":null,"password":[]}`, `{`, ``, `[]`, `"x"`, `{"token":1}`,
	} {
		f.Add([]byte(s))
	}
	us := startUserService(f)
	registerUser(f, us.public, "alice", "alice-password")
	h := newHandler(f, []string{us.internal}, roomy)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/auth/login", bytes.NewReader(body))
		req.RemoteAddr = local
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d %s", body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("body %q: status %d, non-JSON answer %q", body, rec.Code, rec.Body)
		}
	})
}

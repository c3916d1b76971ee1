// Package contract_test checks, against the real user-service, blog-service
// and auth-service processes, that the users and posts APIs keep one
// contract (docs/api-conventions.md): the same error shapes for the same
// faults, the same 401 for a missing or bad bearer token, and the same
// pagination.
package contract_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
	"titanium/platform/jwtauth"
)

// api is one list API with what it takes to create an item in it.
type api struct {
	name string
	list string // the list URL
	// create adds one item with the given index; create body faults go to createURL.
	create    func(t *testing.T, i int)
	createURL string
	createHdr []string
	// missing is the URL of an item that does not exist.
	missing string
	// protected is a request that needs a bearer token (method, URL, body).
	protected [3]string
}

func TestUsersAndPostsKeepOneContract(t *testing.T) {
	s := stacktest.Start(t)
	us, blog, auth := s.URL("user-service"), s.URL("blog-service"), s.URL("auth-service")
	cfg := jwtauth.Config{Secret: []byte(s.JWTSecret), Issuer: "titanium-auth", Audience: "titanium", TTL: 10 * time.Minute}
	token, _, err := cfg.Issue("alice", 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bearer := []string{"Authorization", "Bearer " + token}

	apis := []api{
		{
			name: "users", list: us + "/api/users", createURL: us + "/api/users",
			create: func(t *testing.T, i int) {
				r := httpc.Do(t, "POST", us+"/api/users", map[string]string{
					"username": fmt.Sprintf("user%d", i), "email": fmt.Sprintf("user%d@example.com", i), "password": "password-123",
				})
				if r.Status != http.StatusCreated {
					t.Fatalf("register: %d %s", r.Status, r.Body)
				}
			},
			missing:   us + "/api/users/999999",
			protected: [3]string{"PATCH", us + "/api/users/1", `{"email":"x@example.com"}`},
		},
		{
			name: "posts", list: blog + "/api/posts", createURL: blog + "/api/posts", createHdr: bearer,
			create: func(t *testing.T, i int) {
				r := httpc.Do(t, "POST", blog+"/api/posts", map[string]string{"title": fmt.Sprintf("post %d", i), "content": "text"}, bearer...)
				if r.Status != http.StatusCreated {
					t.Fatalf("create post: %d %s", r.Status, r.Body)
				}
			},
			missing:   blog + "/api/posts/999999",
			protected: [3]string{"POST", blog + "/api/posts", `{"title":"t","content":"c"}`},
		},
	}
	const items = 5
	for _, a := range apis {
		for i := range items {
			a.create(t, i)
		}
	}

	t.Run("error shapes", func(t *testing.T) {
		for _, a := range apis {
			json := func(hdr ...string) []string {
				return append([]string{"Content-Type", "application/json"}, append(hdr, a.createHdr...)...)
			}
			cases := []struct {
				name            string
				method, url     string
				body            string
				hdr             []string
				status          int
				code, field     string
				messageContains string
			}{
				{"malformed JSON", "POST", a.createURL, `{"x":`, json(), 400, "invalid_json", "", ""},
				{"unknown field", "POST", a.createURL, `{"admin":true}`, json(), 400, "validation_failed", "admin", ""},
				{"limit 0", "GET", a.list + "?limit=0", "", nil, 400, "validation_failed", "limit", ""},
				{"limit not a number", "GET", a.list + "?limit=ten", "", nil, 400, "validation_failed", "limit", ""},
				{"cursor not base64", "GET", a.list + "?cursor=!!!", "", nil, 400, "validation_failed", "cursor", ""},
				{"cursor of another version", "GET", a.list + "?cursor=" + b64("p2:3"), "", nil, 400, "validation_failed", "cursor", ""},
				{"cursor without a version", "GET", a.list + "?cursor=" + b64("3"), "", nil, 400, "validation_failed", "cursor", ""},
				{"no such item", "GET", a.missing, "", nil, 404, "not_found", "", "not found"},
				{"id not a number", "GET", strings.TrimSuffix(a.missing, "999999") + "abc", "", nil, 404, "not_found", "", "not found"},
				{"no such route", "GET", strings.Replace(a.list, "/api/", "/api/nothing/", 1), "", nil, 404, "not_found", "", ""},
				{"body too large", "POST", a.createURL, `{"title":"` + strings.Repeat("a", 65<<10) + `"}`, json(), 413, "payload_too_large", "", ""},
				{"not JSON", "POST", a.createURL, `title=x`, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, a.createHdr...), 415, "unsupported_media_type", "", ""},
			}
			for _, c := range cases {
				t.Run(a.name+"/"+c.name, func(t *testing.T) {
					r := httpc.Do(t, c.method, c.url, c.body, c.hdr...)
					m := errorBody(t, r, c.status)
					if m["code"] != c.code || (m["field"] != nil || c.field != "") && m["field"] != c.field {
						t.Errorf("got %s, want code %s field %q", r.Body, c.code, c.field)
					}
					if !strings.Contains(fmt.Sprint(m["error"]), c.messageContains) {
						t.Errorf("message %q lacks %q", m["error"], c.messageContains)
					}
				})
			}
		}
		// 409 is the users API's (the posts API has no unique field).
		r := httpc.Do(t, "POST", us+"/api/users", map[string]string{"username": "user0", "email": "other@example.com", "password": "password-123"})
		if m := errorBody(t, r, 409); m["code"] != "conflict" || m["field"] != "username" {
			t.Errorf("duplicate username: got %s, want 409 conflict naming username", r.Body)
		}
	})

	t.Run("one 401", func(t *testing.T) {
		forged, _, err := jwtauth.Config{Secret: []byte(strings.Repeat("k", 32)), Issuer: "titanium-auth", Audience: "titanium", TTL: time.Minute}.Issue("alice", 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		requests := map[string][3]string{
			"users":  apis[0].protected,
			"posts":  apis[1].protected,
			"verify": {"GET", auth + "/api/auth/verify", ""},
		}
		for _, tok := range []struct {
			name, header, challenge string
		}{
			{"no token", "", `Bearer realm="titanium"`},
			{"forged token", "Bearer " + forged, `Bearer realm="titanium", error="invalid_token"`},
			{"not a token", "Bearer x.y.z", `Bearer realm="titanium", error="invalid_token"`},
			{"another scheme", "Basic YWxpY2U6eA==", `Bearer realm="titanium", error="invalid_token"`},
		} {
			var bodies []string
			for _, name := range slices.Sorted(maps.Keys(requests)) {
				req := requests[name]
				hdr := []string{"Content-Type", "application/json"}
				if tok.header != "" {
					hdr = append(hdr, "Authorization", tok.header)
				}
				r := httpc.Do(t, req[0], req[1], req[2], hdr...)
				errorBody(t, r, 401)
				if got := r.Header.Get("WWW-Authenticate"); got != tok.challenge {
					t.Errorf("%s, %s: WWW-Authenticate %q, want %q", tok.name, name, got, tok.challenge)
				}
				bodies = append(bodies, string(r.Body))
			}
			want := `{"code":"unauthorized","error":"a valid bearer token is required"}` + "\n"
			for i, b := range bodies {
				if b != want {
					t.Errorf("%s: body %d %q, want %q", tok.name, i, b, want)
				}
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		for _, a := range apis {
			t.Run(a.name, func(t *testing.T) {
				all := page(t, a.list+"?limit=1000")
				if len(all.Items) < items || all.NextCursor != nil {
					t.Fatalf("limit above the maximum is clamped: got %d items, next %v; want all (>= %d) and next_cursor null", len(all.Items), all.NextCursor, items)
				}
				if huge := page(t, a.list+"?limit=99999999999999999999"); len(huge.Items) != len(all.Items) {
					t.Errorf("a limit too large for an int: got %d items, want %d", len(huge.Items), len(all.Items))
				}
				if def := page(t, a.list); len(def.Items) != min(len(all.Items), 20) {
					t.Errorf("default limit: got %d items, want %d", len(def.Items), min(len(all.Items), 20))
				}
				var walked []float64
				url := a.list + "?limit=2"
				for range 20 {
					p := page(t, url)
					for _, it := range p.Items {
						walked = append(walked, it["id"].(float64))
					}
					if p.NextCursor == nil {
						break
					}
					if len(p.Items) != 2 {
						t.Fatalf("a page before the last has %d items, want 2", len(p.Items))
					}
					url = a.list + "?limit=2&cursor=" + *p.NextCursor
				}
				var want []float64
				for _, it := range all.Items {
					want = append(want, it["id"].(float64))
				}
				if !slices.Equal(walked, want) {
					t.Errorf("walk by 2: got ids %v, want %v", walked, want)
				}
			})
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// errorBody checks r is a JSON error with status, and returns its body,
// which has "code" and "error" and at most "field" besides.
func errorBody(t *testing.T, r *httpc.Response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d %s, want %d", r.Status, r.Body, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	m := r.Map(t)
	if _, ok := m["code"].(string); !ok {
		t.Errorf("body %s has no code", r.Body)
	}
	if _, ok := m["error"].(string); !ok {
		t.Errorf("body %s has no error message", r.Body)
	}
	for k := range m {
		if k != "code" && k != "error" && k != "field" {
			t.Errorf("body %s has an extra key %q", r.Body, k)
		}
	}
	return m
}

type listPage struct {
	Items      []map[string]any `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

// page gets one page and checks both keys are present: items an array,
// next_cursor a non-empty string or null.
func page(t *testing.T, url string) listPage {
	t.Helper()
	r := httpc.Do(t, "GET", url, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, r.Status, r.Body)
	}
	raw := r.Map(t)
	if _, ok := raw["items"].([]any); !ok {
		t.Fatalf("GET %s: items is not an array: %s", url, r.Body)
	}
	if nc, ok := raw["next_cursor"]; !ok || nc != nil && (fmt.Sprintf("%T", nc) != "string" || nc == "") {
		t.Fatalf("GET %s: next_cursor must be a cursor or null: %s", url, r.Body)
	}
	var p listPage
	r.JSON(t, &p)
	return p
}

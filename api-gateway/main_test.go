package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

// TestRoutes: each prefix reaches its service, /api/health is answered
// here, and /internal/* and unknown routes are JSON 404s.
func TestRoutes(t *testing.T) {
	backend := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]string{"service": name, "path": r.URL.Path})
		}))
		t.Cleanup(s.Close)
		return s
	}
	env := map[string]string{
		"AUTH_SERVICE_URL": backend("auth").URL,
		"USER_SERVICE_URL": backend("user").URL,
		"BLOG_SERVICE_URL": backend("blog").URL,
		"LISTEN_ADDR":      "127.0.0.1:0",
	}
	r := envconfig.New(func(k string) string { return env[k] })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := loadConfig(r, logger)
	srv, err := service.NewFromEnv("api-gateway", r, logger, ":0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mount(srv, cfg, logger); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler())
	defer front.Close()

	tests := []struct {
		path, wantService string
		wantStatus        int
	}{
		{"/api/auth/login", "auth", 200},
		{"/api/users", "user", 200},
		{"/api/users/7", "user", 200},
		{"/api/posts?limit=2", "blog", 200},
		{"/api/posts/3", "blog", 200},
		{"/blog/", "blog", 200},
		{"/api/health", "", 200},
		{"/internal/authenticate", "", 404},
		{"/api/unknown", "", 404},
		{"/elsewhere", "", 404},
	}
	c := &http.Client{}
	for _, tt := range tests {
		resp, err := c.Get(front.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || body["service"] != tt.wantService {
			t.Errorf("%s: got %d %v, want %d from %q", tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantService)
		}
		if tt.wantStatus == 404 && body["code"] != "not_found" {
			t.Errorf("%s: got %v, want JSON not_found", tt.path, body)
		}
	}
}

func TestConfigRejectsBadURLs(t *testing.T) {
	env := map[string]string{"BLOG_SERVICE_URL": "blog:8003", "TRUSTED_PROXIES": "nope"}
	r := envconfig.New(func(k string) string { return env[k] })
	loadConfig(r, slog.New(slog.DiscardHandler))
	if r.Err() == nil {
		t.Fatal("bad BLOG_SERVICE_URL and TRUSTED_PROXIES: got no error")
	}
}

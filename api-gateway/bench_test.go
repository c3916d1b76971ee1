package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

// BenchmarkProxy measures the gateway's whole handler chain (request id,
// instrumentation, routing, forwarding headers, the proxy and its pool
// transport) for B1's list request: an in-process request, proxied over
// loopback to a backend answering a 3.9 KB JSON page with a Content-Length,
// as blog-service does. The client side of the gateway (its net/http
// server) is left out: that is net/http's own cost.
func BenchmarkProxy(b *testing.B) {
	page := []byte(`{"items":[` + strings.Repeat(`{"id":1,"title":"bench post","content":"Created by the mixed-load benchmark.","author":"bench","created_at":"2026-11-30T00:00:00Z","updated_at":"2026-11-30T00:00:00Z"},`, 20) + `{}],"next_cursor":null}` + "\n")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		_, _ = w.Write(page)
	}))
	defer backend.Close()
	env := map[string]string{"BLOG_SERVICE_URL": backend.URL, "LISTEN_ADDR": "127.0.0.1:0"}
	r := envconfig.New(func(k string) string { return env[k] })
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := loadConfig(r, logger)
	srv, err := service.NewFromEnv("api-gateway", r, logger, ":0")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := mount(srv, cfg, logger); err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/api/posts?limit=20", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("X-Request-Id", "0123456789abcdef")
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		req.Header.Set("X-Forwarded-Proto", "http")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Body.Len() != len(page) {
			b.Fatalf("got %d with %d bytes", w.Code, w.Body.Len())
		}
	}
}

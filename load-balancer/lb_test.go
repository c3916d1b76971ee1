package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"titanium/platform/envconfig"
)

func TestCheckOrigin(t *testing.T) {
	h := newHub(wsConfig{allowed: map[string]bool{"http://localhost:7100": true}}, newTraffic(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		origin, host string
		want         bool
	}{
		{"", "lb:7100", true},                             // not a browser
		{"http://localhost:7100", "127.0.0.1:7100", true}, // allow-listed
		{"http://LOCALHOST:7100", "127.0.0.1:7100", true}, // case-insensitive
		{"http://node-1:30700", "node-1:30700", true},     // same origin behind a NodePort
		{"http://evil.example", "lb:7100", false},
		{"http://localhost:7101", "lb:7100", false},
		{"null", "lb:7100", false},
		{"%%", "lb:7100", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/api/ws-heartbeat", nil)
		r.Host = tt.host
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if got := h.checkOrigin(r); got != tt.want {
			t.Errorf("origin %q host %q: got %v, want %v", tt.origin, tt.host, got, tt.want)
		}
	}
}

func TestTrafficMiddleware(t *testing.T) {
	tr := newTraffic()
	codes := map[string]int{"/api/ok": 200, "/api/missing": 404, "/api/boom": 502}
	h := tr.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(codes[r.URL.Path])
	}))
	send := func(method, path string, hdr ...string) {
		r := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	send(http.MethodHead, "/api/ok")
	send(http.MethodGet, "/api/ok", "X-Heartbeat", "true")
	send(http.MethodGet, "/api/ok", "X-Heartbeat", "TRUE")
	if got := tr.snapshot(time.Now()); got.Totals.Requests != 0 || got.HasRealTraffic {
		t.Fatalf("excluded requests counted: %+v", got)
	}
	send(http.MethodGet, "/api/ok")
	send(http.MethodPost, "/api/missing")
	send(http.MethodGet, "/api/boom")
	got := tr.snapshot(time.Now())
	if got.Totals.Requests != 3 || got.Totals.Failures != 1 || !got.HasRealTraffic {
		t.Fatalf("got requests=%d failures=%d real=%v, want 3 1 true", got.Totals.Requests, got.Totals.Failures, got.HasRealTraffic)
	}
	// Idle once the window has passed, live again with WebSocket activity.
	later := time.Now().Add(11 * time.Second)
	if tr.snapshot(later).HasRealTraffic {
		t.Fatal("has_real_traffic 11 s later: want false")
	}
	tr.heartbeat(later)
	if l := tr.snapshot(later); !l.HasRealTraffic || l.WSHeartbeats != 1 {
		t.Fatalf("after a heartbeat: got %+v", l)
	}
}

func TestConfig(t *testing.T) {
	read := func(env map[string]string) (config, error) {
		r := envconfig.New(func(k string) string { return env[k] })
		c := loadConfig(r, nil)
		return c, r.Err()
	}
	c, err := read(map[string]string{
		"LB_STATS_TARGETS": "api-gateway=http://a:1, api-gateway=dns+http://gw.ns.svc:8080,user-service=http://u:2",
		"LB_PEERS":         "dns+http://lb.ns.svc:7100",
		"LB_BALANCE":       "round_robin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.targets) != 3 || c.targets[1].spec != "dns+http://gw.ns.svc:8080" || len(c.peers) != 1 {
		t.Fatalf("got targets %+v peers %v", c.targets, c.peers)
	}
	if c, err := read(map[string]string{"LB_STATS_TARGETS": "none"}); err != nil || len(c.targets) != 0 {
		t.Fatalf("LB_STATS_TARGETS=none: got %v, %v; want no targets", c.targets, err)
	}
	_, err = read(map[string]string{
		"LB_STATS_TARGETS": "noequals", "LB_API_UPSTREAMS": "ftp://x", "LB_BALANCE": "random",
		"WS_PONG_WAIT": "1s", "WS_PING_PERIOD": "2s",
	})
	for _, key := range []string{"LB_STATS_TARGETS", "LB_API_UPSTREAMS", "LB_BALANCE", "WS_PING_PERIOD"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad config: error %v does not name %s", err, key)
		}
	}
}

// BenchmarkTrafficMiddleware shows the accounting's per-request cost and
// that it allocates nothing (run with -benchmem).
func BenchmarkTrafficMiddleware(b *testing.B) {
	tr := newTraffic()
	h := tr.middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

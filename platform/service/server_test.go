package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"titanium/platform/envconfig"
)

func newTestServer(t *testing.T, env map[string]string) *Server {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	if _, ok := env["LISTEN_ADDR"]; !ok {
		env["LISTEN_ADDR"] = "127.0.0.1:0"
	}
	s, err := NewFromEnv("test-service", envconfig.New(getenv), slog.New(slog.NewTextHandler(io.Discard, nil)), ":0")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestOpenFailsOnATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newTestServer(t, map[string]string{"LISTEN_ADDR": ln.Addr().String()})
	if err := s.Open(); err == nil {
		t.Fatal("Open on a taken port: got nil, want an error")
	}
}

func TestInvalidConfigListsEveryError(t *testing.T) {
	env := map[string]string{"SHUTDOWN_TIMEOUT": "soon", "LOG_LEVEL": "loud"}
	_, err := NewFromEnv("x", envconfig.New(func(k string) string { return env[k] }), slog.New(slog.NewTextHandler(io.Discard, nil)), ":0")
	if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Fatalf("got %v, want an error naming SHUTDOWN_TIMEOUT", err)
	}
}

// TestGracefulShutdown: on cancel, readiness fails at once, an in-flight
// request completes, new connections are refused, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	s := newTestServer(t, map[string]string{"SHUTDOWN_DELAY": "300ms"})
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	s.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		finished.Store(true)
		_, _ = io.WriteString(w, "done")
	})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before shutdown: got %d, want 200", code)
	}
	slow := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/slow")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "done" {
				err = errors.New("slow request body: " + string(b))
			}
		}
		slow <- err
	}()
	select { // the slow request is in flight
	case <-entered:
	case err := <-slow:
		t.Fatalf("slow request ended before its handler ran: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request never reached its handler")
	}
	cancel()
	for deadline := time.Now().Add(5 * time.Second); !s.Draining() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining: got %d %v, want 503", code, body)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if !finished.Load() {
		t.Error("in-flight handler did not finish")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func TestPanicBecomesJSON500AndMetricsUseRoutes(t *testing.T) {
	s := newTestServer(t, map[string]string{})
	s.HandleFunc("GET /boom/{id}", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + s.Addr()

	code, body := get(t, base+"/boom/42")
	if code != http.StatusInternalServerError || body["code"] != "internal" {
		t.Fatalf("panic: got %d %v, want 500 {code: internal}", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("server unhealthy after a panic: %d", code)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `http_requests_total{code="500",method="GET",route="GET /boom/{id}"} 1`
	if !strings.Contains(string(text), want) {
		t.Errorf("metrics lack %q", want)
	}
	if strings.Contains(string(text), "/boom/42") {
		t.Error("raw path used as a label")
	}
	_, stats := get(t, base+"/stats")
	reqs, _ := stats["requests"].(map[string]any)
	if reqs["requests"] != float64(1) || reqs["failures"] != float64(1) {
		t.Errorf("stats window: got %v, want 1 request 1 failure (platform routes not counted)", reqs)
	}
}

func TestRequestIDIsEchoedAndGenerated(t *testing.T) {
	s := newTestServer(t, map[string]string{})
	h := s.Handler()
	for _, tt := range []struct{ in, wantSame bool }{{true, true}, {false, false}} {
		req, _ := http.NewRequest(http.MethodGet, "/healthz", nil)
		if tt.in {
			req.Header.Set(RequestIDHeader, "abc-123")
		}
		rec := &responseRecorder{header: http.Header{}}
		h.ServeHTTP(rec, req)
		got := rec.header.Get(RequestIDHeader)
		if tt.wantSame && got != "abc-123" {
			t.Errorf("echo: got %q, want abc-123", got)
		}
		if !tt.wantSame && len(got) != 16 {
			t.Errorf("generated id: got %q", got)
		}
	}
}

type responseRecorder struct {
	header http.Header
	code   int
}

func (r *responseRecorder) Header() http.Header         { return r.header }
func (r *responseRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *responseRecorder) WriteHeader(c int)           { r.code = c }

func TestPprofServesOnItsOwnListenerOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := ln.Addr().String()
	ln.Close()
	s := newTestServer(t, map[string]string{"PPROF_ADDR": pprofAddr})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	var code int
	for i := 0; i < 50; i++ { // the pprof listener starts with Serve
		if resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + pprofAddr + "/debug/pprof/"); err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Fatalf("pprof index: got %d, want 200", code)
	}
	if c, _ := get(t, "http://"+s.Addr()+"/debug/pprof/"); c != http.StatusNotFound {
		t.Errorf("pprof on the service port: got %d, want 404", c)
	}
}

// TestNetHTTPErrorsBecomeJSON: the mux's own 404 and 405 (and any
// http.Error) reach clients as our JSON errors, with Allow kept.
func TestNetHTTPErrorsBecomeJSON(t *testing.T) {
	s := newTestServer(t, map[string]string{})
	s.HandleFunc("GET /things", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "[]") })
	s.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "teapot trouble", http.StatusConflict) })
	h := s.Handler()
	for _, tt := range []struct {
		method, path string
		want         int
		wantCode     string
	}{
		{"GET", "/nothing-here", 404, "not_found"},
		{"DELETE", "/things", 405, "method_not_allowed"},
		{"GET", "/plain", 409, "conflict"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tt.want || body["code"] != tt.wantCode {
			t.Errorf("%s %s: got %d %q (%v), want %d JSON code %s", tt.method, tt.path, rec.Code, rec.Body, err, tt.want, tt.wantCode)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: content type %q", tt.method, tt.path, ct)
		}
		if tt.want == 405 && rec.Header().Get("Allow") == "" {
			t.Errorf("405 lost its Allow header")
		}
	}
}

package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// deadURL is an address where nothing listens: connects are refused.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func serve(t *testing.T, pool *Pool, o ProxyOptions) *httptest.Server {
	t.Helper()
	front := httptest.NewServer(NewProxy(pool, o))
	t.Cleanup(front.Close)
	return front
}

func call(t *testing.T, method, url string, body io.Reader, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

// A request whose connect failed never reached an instance: it goes once
// more to another instance whatever its method, with its body, chunked or
// not, unless that body is over the replay cap and so was streamed.
func TestProxyRetriesRequestsThatCouldNotConnect(t *testing.T) {
	var hits atomic.Int64
	var lastBody atomic.Value
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer live.Close()
	dead := deadURL(t)
	for _, tc := range []struct {
		name    string
		method  string
		body    string
		chunked bool
		want    int
	}{
		{"GET", http.MethodGet, "", false, 200},
		{"POST", http.MethodPost, `{"x":1}`, false, 200},
		{"POST chunked", http.MethodPost, `{"x":2}`, true, 200},
		{"POST chunked over the cap", http.MethodPost, strings.Repeat("y", 100), true, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Round robin starting on the dead host, so the first attempt
			// always fails to connect.
			pool, err := New("svc", []string{dead, live.URL}, Options{Selector: &RoundRobin{}})
			if err != nil {
				t.Fatal(err)
			}
			front := serve(t, pool, ProxyOptions{Retry: true, MaxReplayBody: 64})
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
			}
			before := hits.Load()
			code, m, _ := call(t, tc.method, front.URL+"/x", body)
			if code != tc.want {
				t.Fatalf("got %d %v, want %d", code, m, tc.want)
			}
			switch {
			case tc.want == 502:
				if m["code"] != "bad_gateway" {
					t.Errorf("502 body: got %v, want JSON code bad_gateway", m)
				}
				if hits.Load() != before {
					t.Error("a streaming body was replayed")
				}
			case hits.Load() != before+1:
				t.Errorf("the live instance got %d requests, want exactly 1", hits.Load()-before)
			case tc.body != "" && lastBody.Load() != tc.body:
				t.Errorf("the retried body: got %q, want %q", lastBody.Load(), tc.body)
			}
			if !pool.Hosts()[0].Ejected() {
				t.Error("the dead host was not ejected after a connect error")
			}
		})
	}
}

// ExchangeTimeout bounds the body as well as the headers: an instance that
// sends its headers and then stalls is cut off at the deadline, as the
// load balancer's fasthttp front cuts it.
func TestProxyExchangeTimeoutBoundsTheBody(t *testing.T) {
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer stall.Close()
	defer close(release)
	pool, err := New("stalling-service", []string{stall.URL}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		exchange time.Duration
		cut      bool
	}{
		{"headers only", 0, false},
		{"whole exchange", 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := serve(t, pool, ProxyOptions{ResponseHeaderTimeout: time.Second, ExchangeTimeout: tc.exchange})
			c := &http.Client{Timeout: 2 * time.Second}
			start := time.Now()
			// The proxy buffers the first bytes, so the headers may not
			// reach the client before the body ends either way.
			resp, err := c.Get(front.URL + "/x")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			took := time.Since(start)
			if tc.cut {
				if err == nil || took > 1500*time.Millisecond {
					t.Fatalf("stalled body: read ended after %s with %v, want a cut near 300 ms", took, err)
				}
				return
			}
			// Without the bound only the client's own timeout ends it.
			if took < 1900*time.Millisecond {
				t.Fatalf("stalled body ended after %s (%v) without an exchange timeout, want the client's 2 s", took, err)
			}
		})
	}
}

func TestProxyTimeoutsAndClientCancel(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	pool, err := New("slow-service", []string{slow.URL}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	front := serve(t, pool, ProxyOptions{ResponseHeaderTimeout: 300 * time.Millisecond})

	start := time.Now()
	code, m, _ := call(t, http.MethodGet, front.URL+"/x", nil)
	if code != http.StatusGatewayTimeout || m["code"] != "gateway_timeout" {
		t.Fatalf("slow upstream: got %d %v, want JSON 504", code, m)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("504 took %s", d)
	}

	// A client that goes away gets 499 and does not count against the host.
	h := NewProxy(pool, ProxyOptions{ResponseHeaderTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	time.AfterFunc(100*time.Millisecond, cancel)
	pool.Hosts()[0].fails.Store(0)
	h.ServeHTTP(rec, req)
	if rec.Code != 499 {
		t.Errorf("client cancel: got %d, want 499", rec.Code)
	}
	if n := pool.Hosts()[0].fails.Load(); n != 0 {
		t.Errorf("client cancel counted %d failures against the host, want 0", n)
	}
}

func TestProxyRefusesH2C(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer up.Close()
	pool, _ := New("svc", []string{up.URL}, Options{})
	front := serve(t, pool, ProxyOptions{})
	code, m, _ := call(t, http.MethodGet, front.URL+"/", nil, "Upgrade", "h2c", "Connection", "Upgrade, HTTP2-Settings")
	if code != 400 || m["code"] != "bad_request" || hits.Load() != 0 {
		t.Fatalf("h2c: got %d %v (upstream hits %d), want JSON 400 and no upstream call", code, m, hits.Load())
	}
}

func TestForwardingHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() }))
	defer up.Close()
	pool, _ := New("svc", []string{up.URL}, Options{})
	spoof := []string{"X-Forwarded-For", "6.6.6.6", "X-Real-Ip", "6.6.6.6", "X-Forwarded-Host", "evil"}

	t.Run("edge discards what the client sent", func(t *testing.T) {
		front := serve(t, pool, ProxyOptions{Forward: EdgeForwarding})
		call(t, http.MethodGet, front.URL+"/", nil, spoof...)
		h := <-seen
		if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For: got %q, want 127.0.0.1", got)
		}
		if got := h.Get("X-Real-Ip"); got != "127.0.0.1" {
			t.Errorf("X-Real-Ip: got %q, want 127.0.0.1", got)
		}
		if got := h.Get("X-Forwarded-Host"); got == "evil" {
			t.Error("X-Forwarded-Host from the client was kept")
		}
	})
	t.Run("trusted peer keeps the chain", func(t *testing.T) {
		loopback := func(a netip.Addr) bool { return a.IsLoopback() }
		front := serve(t, pool, ProxyOptions{Forward: TrustedForwarding(loopback)})
		call(t, http.MethodGet, front.URL+"/", nil, "X-Forwarded-For", "198.51.100.7", "X-Real-Ip", "198.51.100.7", "X-Forwarded-Host", "titanium.example")
		h := <-seen
		if got := h.Get("X-Forwarded-For"); got != "198.51.100.7, 127.0.0.1" {
			t.Errorf("X-Forwarded-For: got %q, want the client then the LB", got)
		}
		if got := h.Get("X-Real-Ip"); got != "198.51.100.7" {
			t.Errorf("X-Real-Ip: got %q", got)
		}
		if got := h.Get("X-Forwarded-Host"); got != "titanium.example" {
			t.Errorf("X-Forwarded-Host: got %q", got)
		}
	})
	t.Run("trusted peer with a duplicated header is not believed", func(t *testing.T) {
		loopback := func(a netip.Addr) bool { return a.IsLoopback() }
		front := serve(t, pool, ProxyOptions{Forward: TrustedForwarding(loopback)})
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		req.Header.Add("X-Forwarded-For", "127.0.0.1")
		req.Header.Add("X-Forwarded-For", "203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := <-seen
		if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For: got %q, want the peer only", got)
		}
	})
	t.Run("untrusted peer is the client", func(t *testing.T) {
		never := func(netip.Addr) bool { return false }
		front := serve(t, pool, ProxyOptions{Forward: TrustedForwarding(never)})
		call(t, http.MethodGet, front.URL+"/", nil, spoof...)
		h := <-seen
		if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For: got %q, want the peer only", got)
		}
		if got := h.Get("X-Real-Ip"); got != "127.0.0.1" {
			t.Errorf("X-Real-Ip: got %q", got)
		}
	})
}

// Only connect errors and timeouts count against an instance: no status
// does (the gateway relays its upstreams' 503s), nor a body the client
// sent over the cap.
func TestPassiveHealthCountsOnlyConnectErrorsAndTimeouts(t *testing.T) {
	var status atomic.Int64
	status.Store(500)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(status.Load()))
	}))
	defer up.Close()
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer other.Close()
	pool, _ := New("svc", []string{up.URL, other.URL}, Options{Selector: &RoundRobin{}, MaxFails: 2})
	capped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16)
		NewProxy(pool, ProxyOptions{ResponseHeaderTimeout: 100 * time.Millisecond}).ServeHTTP(w, r)
	})
	front := httptest.NewServer(capped)
	defer front.Close()
	bad := pool.Hosts()[0]
	for _, code := range []int64{500, 502, 503, 504} {
		status.Store(code)
		for range 6 {
			call(t, http.MethodGet, front.URL+"/", nil)
		}
		if bad.Ejected() {
			t.Fatalf("relayed %ds ejected the host", code)
		}
	}
	status.Store(200)
	for range 6 {
		if code, m, _ := call(t, http.MethodPost, front.URL+"/", strings.NewReader(strings.Repeat("x", 64))); code != 413 {
			t.Fatalf("body over the cap: %d %v, want 413", code, m)
		}
	}
	if bad.Ejected() {
		t.Fatal("bodies over the cap ejected the host")
	}
	for range 6 {
		call(t, http.MethodGet, front.URL+"/slow", nil)
	}
	if !bad.Ejected() {
		t.Fatal("consecutive timeouts did not eject the host")
	}
}

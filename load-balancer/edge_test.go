package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// servingPaths are the ways the balancer serves a proxied request: the
// fasthttp front, net/http after the front handed the connection off, and
// net/http alone (LB_FAST_PATH=false). Every edge case runs on each.
var servingPaths = []struct {
	name    string
	fast    string
	handoff bool
}{
	{"fast", "true", false},
	{"handoff", "true", true},
	{"net-http", "false", false},
}

// headerBackend answers with the request's headers as JSON; on /api/dup-id
// it sends two X-Request-Id lines, as a proxy that echoes its own id next
// to its upstream's does.
func headerBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/api/dup-id" {
			w.Header().Add("X-Request-Id", "upstream-1")
			w.Header().Add("X-Request-Id", "upstream-2")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// exchange sends one raw request on a new connection to the balancer (after
// a GET /healthz on it when handoff, so that net/http serves the request)
// and returns the answer.
func exchange(t *testing.T, lbURL string, handoff bool, raw string) (*http.Response, string) {
	t.Helper()
	c, br := dialLB(t, lbURL)
	if handoff {
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
		if resp, _ := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("GET /healthz: %d", resp.StatusCode)
		}
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, br)
}

// A client's second copy of a forwarding header or of X-Request-Id never
// reaches the upstream: a header that is set without deleting every copy
// first leaves the client's second line beside the edge's own, and the
// gateway then takes the client's for the client address (the login
// throttle bypass).
func TestEdgeDuplicateHeaders(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast})
			resp, body := exchange(t, lbURL, p.handoff, "GET /api/h HTTP/1.1\r\nHost: lb\r\n"+
				"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 203.0.113.7\r\n"+
				"X-Real-Ip: 1.1.1.1\r\nX-Real-Ip: 203.0.113.7\r\n"+
				"X-Forwarded-Proto: https\r\nX-Forwarded-Proto: https\r\n"+
				"X-Forwarded-Host: a\r\nX-Forwarded-Host: b\r\n"+
				"Forwarded: for=1.1.1.1\r\nForwarded: for=203.0.113.7\r\n"+
				"X-Request-Id: trace-1\r\nX-Request-Id: trace-2\r\n\r\n")
			var h http.Header
			if err := json.Unmarshal([]byte(body), &h); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET: %d %s", resp.StatusCode, body)
			}
			for k, want := range map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http",
				"X-Forwarded-Host": "lb", "X-Request-Id": "trace-1",
			} {
				if got := h.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("upstream got %s %q, want [%s]", k, got, want)
				}
			}
			if got := h.Values("Forwarded"); len(got) != 0 {
				t.Errorf("upstream got Forwarded %q, want none", got)
			}
			if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "trace-1" {
				t.Errorf("client got X-Request-Id %q, want [trace-1]", got)
			}
		})
	}
}

// An upstream answer with its own X-Request-Id lines reaches the client
// with exactly one: the edge's.
func TestEdgeOneRequestIDInTheAnswer(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast})
			resp, _ := exchange(t, lbURL, p.handoff, "POST /api/dup-id HTTP/1.1\r\nHost: lb\r\nX-Request-Id: mine\r\nContent-Length: 2\r\n\r\n{}")
			if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "mine" {
				t.Errorf("client got X-Request-Id %q, want [mine]", got)
			}
		})
	}
}

// A body declared over LB_MAX_BODY_BYTES is refused with a JSON 413 before
// any of it is read (fasthttp would allocate the declared length first);
// a chunked one is cut at the cap.
func TestEdgeOversizeBody(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast, "LB_MAX_BODY_BYTES": "4096",
			})
			resp, body := exchange(t, lbURL, p.handoff, "POST /api/x HTTP/1.1\r\nHost: lb\r\nContent-Length: 8388607\r\n\r\nbbbb")
			if resp.StatusCode != 413 || !strings.Contains(body, `"payload_too_large"`) {
				t.Errorf("declared 8 MiB: %d %s, want JSON 413", resp.StatusCode, body)
			}
			chunk := strings.Repeat("c", 3000)
			resp, body = exchange(t, lbURL, p.handoff, "POST /api/x HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"bb8\r\n"+chunk+"\r\nbb8\r\n"+chunk+"\r\n0\r\n\r\n")
			if resp.StatusCode != 413 || !strings.Contains(body, `"payload_too_large"`) {
				t.Errorf("chunked 6000 bytes: %d %s, want JSON 413", resp.StatusCode, body)
			}
			resp, body = exchange(t, lbURL, p.handoff, "POST /api/x HTTP/1.1\r\nHost: lb\r\nContent-Length: 4096\r\n\r\n"+strings.Repeat("o", 4096))
			if resp.StatusCode != 200 {
				t.Errorf("a body at the cap: %d %s, want 200", resp.StatusCode, body)
			}
		})
	}
}

// A body that stalls is given READ_TIMEOUT to arrive, then the connection
// closes, after a hand-off too (net/http had no body deadline there).
func TestEdgeStalledBody(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast, "READ_TIMEOUT": "500ms",
			})
			c, br := dialLB(t, lbURL)
			if p.handoff {
				_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
				readResponse(t, br)
			}
			start := time.Now()
			_, _ = io.WriteString(c, "POST /api/auth/login HTTP/1.1\r\nHost: lb\r\nContent-Length: 100\r\n\r\n{")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, br) // any answer, then the close
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("stalled body: connection open %v, want closed after about 500ms", d)
			}
		})
	}
}

// An HTTP/1.0 request without Host is forwarded (with the instance's
// address as Host, as net/http's transport does), not failed as if the
// instance were at fault.
func TestEdgeHTTP10WithoutHost(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast})
			if resp, body := exchange(t, lbURL, p.handoff, "GET /api/x HTTP/1.0\r\n\r\n"); resp.StatusCode != 200 {
				t.Errorf("HTTP/1.0 without Host: %d %s, want 200", resp.StatusCode, body)
			}
		})
	}
}

// A 502/503/504 that an instance relays is its answer, not its failure: it
// keeps its share of the requests (it used to be ejected after three).
func TestEdgeRelayedErrorsDoNotEject(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			var hits atomic.Int64
			relaying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"code":"unavailable","error":"user-service is unavailable"}`)
			}))
			t.Cleanup(relaying.Close)
			good := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": relaying.URL + "," + good.URL, "LB_UI_UPSTREAMS": good.URL,
				"LB_FAST_PATH": p.fast, "LB_BALANCE": "round_robin",
			})
			for range 20 {
				exchange(t, lbURL, p.handoff, "GET /api/x HTTP/1.1\r\nHost: lb\r\n\r\n")
			}
			if n := hits.Load(); n != 10 {
				t.Errorf("the instance relaying 503s got %d of 20 requests, want 10 (not ejected)", n)
			}
		})
	}
}

// Behind a trusted TLS proxy (LB_TRUSTED_PROXIES, an Ingress controller),
// the client is the one that proxy names in its single X-Forwarded-For
// line and https is kept; a duplicated line is not believed.
func TestEdgeBehindTrustedProxy(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be := headerBackend(t)
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast, "LB_TRUSTED_PROXIES": "127.0.0.1",
			})
			for _, tt := range []struct {
				name, headers, client, proto string
			}{
				{"one line", "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nX-Forwarded-Proto: https\r\n", "203.0.113.9", "https"},
				{"two lines", "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n", "127.0.0.1", "https"},
				{"nothing", "", "127.0.0.1", "http"},
			} {
				resp, body := exchange(t, lbURL, p.handoff, "GET /api/h HTTP/1.1\r\nHost: lb\r\n"+tt.headers+"\r\n")
				var h http.Header
				if err := json.Unmarshal([]byte(body), &h); err != nil || resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", tt.name, resp.StatusCode, body)
				}
				if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tt.client {
					t.Errorf("%s: upstream got X-Forwarded-For %q, want [%s]", tt.name, got, tt.client)
				}
				if got := h.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != tt.proto {
					t.Errorf("%s: upstream got X-Forwarded-Proto %q, want [%s]", tt.name, got, tt.proto)
				}
			}
		})
	}
}

// Upstream failures get the same JSON answers and the same retries on every
// path: a dead instance 502, a slow one 504 after LB_RESPONSE_HEADER_TIMEOUT,
// a connection lost before the answer 502 after one more try for a GET and
// none for a POST, and hop-by-hop headers cross in neither direction.
func TestEdgeUpstreamFailures(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be, _ := echoBackend(t)
			broken, count := brokenBackend(t)
			dead := deadURL(t)
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": dead, "LB_FAST_PATH": p.fast, "LB_RESPONSE_HEADER_TIMEOUT": "300ms",
			})
			if resp, body := exchange(t, lbURL, p.handoff, "GET / HTTP/1.1\r\nHost: lb\r\n\r\n"); resp.StatusCode != 502 || !strings.Contains(body, `"bad_gateway"`) {
				t.Errorf("dead instance: %d %s, want JSON 502", resp.StatusCode, body)
			}
			start := time.Now()
			if resp, body := exchange(t, lbURL, p.handoff, "GET /api/slow HTTP/1.1\r\nHost: lb\r\n\r\n"); resp.StatusCode != 504 || !strings.Contains(body, `"gateway_timeout"`) {
				t.Errorf("slow instance: %d %s, want JSON 504", resp.StatusCode, body)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("slow instance answered after %v, want about 300ms", d)
			}
			resp, body := exchange(t, lbURL, p.handoff, "GET /api/h HTTP/1.1\r\nHost: lb\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=1\r\nProxy-Authorization: Basic eDp5\r\n\r\n")
			var e echoed
			if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != 200 {
				t.Fatalf("hop-by-hop: %d %s", resp.StatusCode, body)
			}
			for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
				if v := e.Header.Get(k); v != "" {
					t.Errorf("upstream got %s: %q, want it removed", k, v)
				}
			}
			if v := resp.Header.Get("Keep-Alive"); v != "" {
				t.Errorf("client got the upstream's Keep-Alive: %q", v)
			}

			lbURL, _ = startLB(t, map[string]string{"LB_API_UPSTREAMS": broken, "LB_UI_UPSTREAMS": broken, "LB_FAST_PATH": p.fast})
			if resp, body := exchange(t, lbURL, p.handoff, "GET /api/get HTTP/1.1\r\nHost: lb\r\n\r\n"); resp.StatusCode != 502 {
				t.Errorf("lost connection, GET: %d %s, want 502", resp.StatusCode, body)
			}
			if n := count(); n != 2 {
				t.Errorf("lost connection: the GET went %d times, want 2 (one retry)", n)
			}
			if resp, body := exchange(t, lbURL, p.handoff, "POST /api/post HTTP/1.1\r\nHost: lb\r\nContent-Length: 1\r\n\r\nx"); resp.StatusCode != 502 {
				t.Errorf("lost connection, POST: %d %s, want 502", resp.StatusCode, body)
			}
			if n := count(); n != 3 {
				t.Errorf("lost connection: the POST went %d times, want once", n-2)
			}
		})
	}
}

// Upstream connections are pooled: sequential requests reuse one
// connection rather than dialling (or building a pool) per request.
func TestEdgeReusesUpstreamConnections(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			var conns atomic.Int64
			be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "ok")
			}))
			be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			be.Start()
			t.Cleanup(be.Close)
			lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast})
			c, br := dialLB(t, lbURL)
			if p.handoff {
				_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
				readResponse(t, br)
			}
			for range 100 {
				_, _ = io.WriteString(c, "GET /api/x HTTP/1.1\r\nHost: lb\r\n\r\n")
				if resp, body := readResponse(t, br); resp.StatusCode != 200 {
					t.Fatalf("GET: %d %s", resp.StatusCode, body)
				}
			}
			if n := conns.Load(); n > 2 {
				t.Errorf("100 sequential requests opened %d upstream connections, want 1", n)
			}
		})
	}
}

// A request whose connect failed never reached an instance, so every path
// sends it once more to another instance whatever its method: a POST meets
// a dead instance and still lands, exactly once, with its body.
func TestEdgePostRetriedAfterConnectFailure(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be, seen := echoBackend(t)
			dead := deadURL(t)
			// Round robin, ejections that end at once and no active check
			// within the test, so the dead instance keeps its turn in the
			// rotation and every other POST meets it first.
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": dead + "," + be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast,
				"LB_BALANCE": "round_robin", "LB_EJECT_FOR": "1ms", "LB_HEALTH_INTERVAL": "1h",
			})
			const n = 6
			for i := range n {
				body := fmt.Sprintf(`{"i":%d}`, i)
				raw := fmt.Sprintf("POST /api/p%d HTTP/1.1\r\nHost: lb\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
				resp, got := exchange(t, lbURL, p.handoff, raw)
				var e echoed
				if resp.StatusCode != 200 || json.Unmarshal([]byte(got), &e) != nil || e.Body != body {
					t.Errorf("POST %d: %d %s, want 200 with the body %s echoed", i, resp.StatusCode, got, body)
				}
			}
			posts := 0
			for _, s := range *seen {
				if strings.HasPrefix(s, "POST ") {
					posts++
				}
			}
			if posts != n {
				t.Errorf("the live instance got %d POSTs, want %d (each exactly once): %v", posts, n, *seen)
			}
		})
	}
}

// A chunked POST whose connect failed is resent as well: every path holds a
// body up to the cap in memory and sends it on with a Content-Length.
func TestEdgeChunkedPostRetriedAfterConnectFailure(t *testing.T) {
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			be, seen := echoBackend(t)
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": deadURL(t) + "," + be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_FAST_PATH": p.fast,
				"LB_BALANCE": "round_robin", "LB_EJECT_FOR": "1ms", "LB_HEALTH_INTERVAL": "1h",
			})
			const n = 4
			for i := range n {
				body := fmt.Sprintf(`{"chunked":%d}`, i)
				raw := fmt.Sprintf("POST /api/c%d HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", i, len(body), body)
				resp, got := exchange(t, lbURL, p.handoff, raw)
				var e echoed
				if resp.StatusCode != 200 || json.Unmarshal([]byte(got), &e) != nil || e.Body != body {
					t.Errorf("chunked POST %d: %d %s, want 200 with the body %s echoed", i, resp.StatusCode, got, body)
				}
			}
			if len(*seen) != n {
				t.Errorf("the live instance got %d requests, want %d (each exactly once): %v", len(*seen), n, *seen)
			}
		})
	}
}

// LB_RESPONSE_HEADER_TIMEOUT bounds the whole upstream exchange on every
// path: an instance that sends its headers and then stalls mid-body does
// not hold the client (and a goroutine and an upstream connection) longer.
// The front buffers answers and so sends a 504; net/http has begun the
// answer and can only cut it.
func TestEdgeStalledUpstreamBody(t *testing.T) {
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, `{"partial":`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stall.Close)
	t.Cleanup(func() { close(release) })
	for _, p := range servingPaths {
		t.Run(p.name, func(t *testing.T) {
			lbURL, _ := startLB(t, map[string]string{
				"LB_API_UPSTREAMS": stall.URL, "LB_UI_UPSTREAMS": stall.URL, "LB_FAST_PATH": p.fast,
				"LB_RESPONSE_HEADER_TIMEOUT": "300ms",
			})
			c, br := dialLB(t, lbURL)
			if p.handoff {
				_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
				readResponse(t, br)
			}
			start := time.Now()
			_, _ = io.WriteString(c, "GET /api/stall HTTP/1.1\r\nHost: lb\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			took := time.Since(start)
			if took > 2*time.Second {
				t.Fatalf("stalled upstream body held the client for %v, want about 300ms", took)
			}
			if err == nil && resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("stalled upstream body: a whole %d answer, want a 504 or a cut", resp.StatusCode)
			}
		})
	}
}

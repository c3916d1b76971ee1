package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

// echoBackend answers every request with what it received, as JSON.
type echoed struct {
	Proto  string      `json:"proto"`
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Body   string      `json:"body"`
	Header http.Header `json:"header"`
}

func echoBackend(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	return echoBackendWatched(t, nil)
}

// echoBackendWatched is echoBackend with a ConnState hook (nil for none).
func echoBackendWatched(t *testing.T, connState func(net.Conn, http.ConnState)) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI)
		mu.Unlock()
		switch r.URL.Path {
		case "/api/slow":
			time.Sleep(2 * time.Second)
		case "/api/unavailable":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"code":"unavailable","error":"down"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Keep-Alive", "timeout=5") // hop-by-hop: must not reach the client
		_ = json.NewEncoder(w).Encode(echoed{r.Proto, r.Method, r.RequestURI, string(b), r.Header})
	}))
	srv.Config.ConnState = connState
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &seen
}

// startLB runs the load balancer in this process on a free 127.0.0.1 port
// with env over sensible test defaults, and returns its base URL and server.
func startLB(t *testing.T, env map[string]string) (string, *service.Server) {
	t.Helper()
	base := map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "INSTANCE_ID": "lb-test", "LB_STATS_TARGETS": "none",
		"LB_HEALTH_PATH": "none", "SHUTDOWN_DELAY": "0s", "SHUTDOWN_TIMEOUT": "2s",
	}
	for k, v := range env {
		base[k] = v
	}
	r := envconfig.New(func(k string) string { return base[k] })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := loadConfig(r, logger)
	srv, err := service.NewFromEnv("load-balancer", r, logger, ":7100")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := build(srv, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range lb.pools {
		wg.Go(func() { p.Run(ctx) })
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		wg.Wait()
	})
	return "http://" + srv.Addr(), srv
}

// dialLB opens a raw connection to the balancer, with a deadline.
func dialLB(t *testing.T, lbURL string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(lbURL, "http://"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// echoLB is a balancer whose both upstreams are one echo backend; it
// returns the balancer's URL and what the backend saw.
func echoLB(t *testing.T) (string, *[]string) {
	t.Helper()
	be, seen := echoBackend(t)
	lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL})
	return lbURL, seen
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// A connection whose requests go to both paths: the front serves the
// proxied ones until a request for the balancer's own routes, then
// net/http serves the rest of that connection, pipelined bytes and request
// bodies included.
func TestFrontHandoffKeepsTheConnection(t *testing.T) {
	lbURL, seen := echoLB(t)
	c, br := dialLB(t, lbURL)
	send := func(s string) {
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}

	send("GET /api/a HTTP/1.1\r\nHost: lb\r\n\r\n")
	if resp, _ := readResponse(t, br); resp.StatusCode != 200 {
		t.Fatalf("GET /api/a: %d", resp.StatusCode)
	}
	// Pipelined: an own route and a proxied request in one write.
	send("GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\nGET /api/b?q=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
	if resp, body := readResponse(t, br); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
	}
	if resp, body := readResponse(t, br); resp.StatusCode != 200 || !strings.Contains(body, `"/api/b?q=1"`) {
		t.Fatalf("pipelined GET /api/b: %d %s", resp.StatusCode, body)
	}
	// A chunked POST to an own route: net/http answers 405 in JSON, and the
	// connection still works after it.
	send("POST /stats HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp, body := readResponse(t, br); resp.StatusCode != 405 || !strings.Contains(body, `"method_not_allowed"`) {
		t.Fatalf("POST /stats: %d %s", resp.StatusCode, body)
	}
	send("POST /api/c HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\n\r\nworld")
	resp, body := readResponse(t, br)
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != 200 || e.Body != "world" {
		t.Fatalf("POST /api/c after the handoff: %d %s", resp.StatusCode, body)
	}
	want := []string{"GET /api/a", "GET /api/b?q=1", "POST /api/c"}
	if fmt.Sprint(*seen) != fmt.Sprint(want) {
		t.Fatalf("backend saw %v, want %v", *seen, want)
	}
}

// A path that is not canonical goes to net/http, which redirects it, rather
// than being forwarded in a form the client did not send.
func TestFrontNonCanonicalPath(t *testing.T) {
	lbURL, seen := echoLB(t)
	c, br := dialLB(t, lbURL)
	_, _ = io.WriteString(c, "GET /api/../stats HTTP/1.1\r\nHost: lb\r\n\r\n")
	resp, _ := readResponse(t, br)
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/stats" {
		t.Fatalf("GET /api/../stats: %d Location %q, want a redirect to /stats", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An escaped slash reaches the upstream as sent.
	r, err := http.Get(lbURL + "/api/a%2Fb")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if len(*seen) != 1 || (*seen)[0] != "GET /api/a%2Fb" {
		t.Fatalf("backend saw %v, want [GET /api/a%%2Fb]", *seen)
	}
}

// The upstream gets the edge's forwarding headers, never the client's, and
// no hop-by-hop header crosses in either direction.
func TestFrontForwardingHeaders(t *testing.T) {
	lbURL, _ := echoLB(t)
	req, _ := http.NewRequest(http.MethodGet, lbURL+"/api/h", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Real-Ip", "6.6.6.6")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "timeout=1")
	req.Header.Set("X-Request-Id", "trace-me-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	h := e.Header
	for k, want := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": strings.TrimPrefix(lbURL, "http://"), "X-Request-Id": "trace-me-1",
	} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("upstream got %s %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"Forwarded", "X-Secret", "Keep-Alive"} {
		if v := h.Get(k); v != "" {
			t.Errorf("upstream got %s: %q, want it removed", k, v)
		}
	}
	if v := resp.Header.Get("Keep-Alive"); v != "" {
		t.Errorf("client got Keep-Alive: %q from the upstream", v)
	}
	if v := resp.Header.Get("X-Request-Id"); v != "trace-me-1" {
		t.Errorf("response X-Request-Id %q, want trace-me-1", v)
	}
}

// An HTTP/1.0 client gets its answer and its connection closed, while the
// upstream connection stays HTTP/1.1; a 100-continue is answered by the
// front, and the upstream gets the body without the Expect header.
func TestFrontProtocolEdges(t *testing.T) {
	lbURL, _ := echoLB(t)
	c, br := dialLB(t, lbURL)
	_, _ = io.WriteString(c, "GET /api/old HTTP/1.0\r\nHost: lb\r\n\r\n")
	resp, body := readResponse(t, br)
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != 200 || e.Proto != "HTTP/1.1" {
		t.Fatalf("HTTP/1.0 GET: %d %s, want 200 and HTTP/1.1 upstream", resp.StatusCode, body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after an HTTP/1.0 answer: read %v, want the connection closed", err)
	}

	c, br = dialLB(t, lbURL)
	_, _ = io.WriteString(c, "POST /api/expect HTTP/1.1\r\nHost: lb\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("after Expect: 100-continue: %q %v, want 100 Continue", line, err)
	}
	_, _ = br.ReadString('\n') // the blank line ending the interim response
	_, _ = io.WriteString(c, "hello")
	resp, body = readResponse(t, br)
	e = echoed{}
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != 200 || e.Body != "hello" || e.Header.Get("Expect") != "" {
		t.Fatalf("POST with 100-continue: %d %s, want the body upstream without Expect", resp.StatusCode, body)
	}
}

// A POST on a pooled connection that the instance closed while it was idle
// (as a graceful shutdown does) is sent on a fresh connection, not lost.
func TestFrontStaleConnection(t *testing.T) {
	var mu sync.Mutex
	states := map[net.Conn]http.ConnState{}
	count := func(want http.ConnState) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, st := range states {
			if st == want {
				n++
			}
		}
		return n
	}
	be, seen := echoBackendWatched(t, func(c net.Conn, st http.ConnState) {
		mu.Lock()
		states[c] = st
		mu.Unlock()
	})
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("backend: %s did not happen", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": be.URL})
	for i := range 3 {
		if code, m := getJSON(t, http.MethodPost, fmt.Sprintf("%s/api/p/%d", lbURL, i), nil, strings.NewReader("x")); code != 200 {
			t.Fatalf("POST %d: %d %v", i, code, m)
		}
		// The backend closes its idle connections, the balancer's pooled
		// one among them, and keeps serving new ones.
		closed := count(http.StateClosed)
		waitFor("the connection going idle after the answer", func() bool { return count(http.StateIdle) > 0 })
		be.Config.SetKeepAlivesEnabled(false)
		be.Config.SetKeepAlivesEnabled(true)
		waitFor("the idle connection closing", func() bool { return count(http.StateClosed) > closed })
	}
	if len(*seen) != 3 {
		t.Fatalf("backend saw %v, want each POST once", *seen)
	}
}

// A request without Content-Type reaches the upstream without one, on the
// front and after a handoff alike.
func TestFrontKeepsContentTypeAbsent(t *testing.T) {
	lbURL, _ := echoLB(t)
	c, br := dialLB(t, lbURL)
	for _, path := range []string{"/api/a", "/api/b"} {
		if path == "/api/b" {
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
			readResponse(t, br) // the connection is net/http's from here
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: lb\r\nContent-Length: 2\r\n\r\n{}", path)
		resp, body := readResponse(t, br)
		var e echoed
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
		}
		if ct := e.Header.Get("Content-Type"); ct != "" {
			t.Errorf("POST %s: upstream got Content-Type %q, want none", path, ct)
		}
	}
}

// A connection that sends nothing, or dribbles a request head, is closed
// after the header timeout (2 s) without any answer, as net/http does.
func TestFrontHeaderTimeout(t *testing.T) {
	lbURL, _ := echoLB(t)
	_, idleR := dialLB(t, lbURL)
	slow, slowR := dialLB(t, lbURL)
	_, _ = io.WriteString(slow, "GET /api/x HTTP/1.1\r\nHost: lb\r\nX-Slow: ")
	start := time.Now()
	for name, br := range map[string]*bufio.Reader{"silent": idleR, "dribbling": slowR} {
		b, err := br.ReadByte()
		if err != io.EOF {
			t.Errorf("%s connection: read %q %v, want it closed without an answer", name, b, err)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("closed after %v, want about 2 s", d)
	}
}

func getJSON(t *testing.T, method, url string, hdr map[string]string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if ct := resp.Header.Get("Content-Type"); method != http.MethodHead && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, url, ct)
	}
	return resp.StatusCode, m
}

// deadURL is the URL of a loopback port nobody listens on: connects to it
// fail at once.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// Every failure the front answers itself is a JSON error with the right
// status: a dead upstream, a slow one, a head or body over the limits.
func TestFrontErrors(t *testing.T) {
	be, _ := echoBackend(t)
	dead := deadURL(t)
	lbURL, _ := startLB(t, map[string]string{
		"LB_API_UPSTREAMS": be.URL, "LB_UI_UPSTREAMS": dead, "LB_RESPONSE_HEADER_TIMEOUT": "300ms",
	})
	if code, m := getJSON(t, http.MethodGet, lbURL+"/", nil, nil); code != 502 || m["code"] != "bad_gateway" {
		t.Errorf("dead upstream: %d %v, want 502 bad_gateway", code, m)
	}
	start := time.Now()
	if code, m := getJSON(t, http.MethodGet, lbURL+"/api/slow", nil, nil); code != 504 || m["code"] != "gateway_timeout" {
		t.Errorf("slow upstream: %d %v, want 504 gateway_timeout", code, m)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("slow upstream answered after %v, want about 300 ms", d)
	}
	big := map[string]string{"X-Big": strings.Repeat("a", frontReadBuffer)}
	if code, m := getJSON(t, http.MethodGet, lbURL+"/api/x", big, nil); code != 431 {
		t.Errorf("oversize head: %d %v, want 431", code, m)
	}
	// The length alone refuses the body: the answer comes before it is sent
	// (a client still writing would see its write reset).
	c, br := dialLB(t, lbURL)
	fmt.Fprintf(c, "POST /api/x HTTP/1.1\r\nHost: lb\r\nContent-Length: %d\r\n\r\nbbbb", 1<<20+64<<10+1)
	resp, body := readResponse(t, br)
	if resp.StatusCode != 413 || !strings.Contains(body, `"payload_too_large"`) {
		t.Errorf("oversize body: %d %s, want 413 payload_too_large", resp.StatusCode, body)
	}
}

// A GET whose first instance cannot be reached is retried on the other.
func TestFrontRetriesAFailedConnect(t *testing.T) {
	be, seen := echoBackend(t)
	dead := deadURL(t)
	lbURL, _ := startLB(t, map[string]string{
		"LB_API_UPSTREAMS": dead + "," + be.URL, "LB_UI_UPSTREAMS": be.URL, "LB_BALANCE": "round_robin",
	})
	for i := range 6 {
		if code, m := getJSON(t, http.MethodGet, fmt.Sprintf("%s/api/get/%d", lbURL, i), nil, nil); code != 200 {
			t.Fatalf("GET %d: %d %v, want 200 through the retry", i, code, m)
		}
	}
	if len(*seen) != 6 {
		t.Errorf("backend saw %d GETs, want 6 (each once)", len(*seen))
	}
}

// brokenBackend reads each request and closes the connection without an
// answer, as an instance dying under the request would; it counts requests.
func brokenBackend(t *testing.T) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// A connection lost before any answer: a GET is sent once more, a POST is
// never replayed; both then get a JSON 502.
func TestFrontConnectionLost(t *testing.T) {
	broken, count := brokenBackend(t)
	lbURL, _ := startLB(t, map[string]string{"LB_API_UPSTREAMS": broken, "LB_UI_UPSTREAMS": broken})
	if code, m := getJSON(t, http.MethodGet, lbURL+"/api/get", nil, nil); code != 502 || m["code"] != "bad_gateway" {
		t.Fatalf("GET: %d %v, want 502 bad_gateway", code, m)
	}
	if n := count(); n != 2 {
		t.Fatalf("the broken instance got the GET %d times, want 2 (one retry)", n)
	}
	if code, m := getJSON(t, http.MethodPost, lbURL+"/api/post", nil, strings.NewReader("x")); code != 502 || m["code"] != "bad_gateway" {
		t.Fatalf("POST: %d %v, want 502 bad_gateway", code, m)
	}
	if n := count(); n != 3 {
		t.Fatalf("the broken instance got the POST %d times, want once", n-2)
	}
}

// The front accounts what it serves as the net/http chain does: the 10 s
// window counts /api/ requests but not HEAD or X-Heartbeat ones, and the
// RED metrics carry the route label.
func TestFrontAccounting(t *testing.T) {
	lbURL, _ := echoLB(t)
	for range 3 {
		getJSON(t, http.MethodGet, lbURL+"/api/x", nil, nil)
	}
	getJSON(t, http.MethodGet, lbURL+"/api/unavailable", nil, nil)
	getJSON(t, http.MethodHead, lbURL+"/api/x", nil, nil)
	getJSON(t, http.MethodGet, lbURL+"/api/x", map[string]string{"X-Heartbeat": "true"}, nil)
	getJSON(t, http.MethodGet, lbURL+"/", nil, nil)
	code, m := getJSON(t, http.MethodGet, lbURL+"/stats/local", nil, nil)
	tot, _ := m["totals"].(map[string]any)
	if code != 200 || tot["requests"] != 4.0 || tot["failures"] != 1.0 {
		t.Fatalf("/stats/local totals %v, want 4 requests, 1 failure", m["totals"])
	}
	resp, err := http.Get(lbURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`http_requests_total{code="200",method="GET",route="/api/"} 4`,
		`http_requests_total{code="503",method="GET",route="/api/"} 1`,
		`http_requests_total{code="200",method="HEAD",route="/api/"} 1`,
		`http_requests_total{code="200",method="GET",route="/"} 1`,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

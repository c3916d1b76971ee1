package lb_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

func dial(t *testing.T, lb, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return d.Dial("ws"+strings.TrimPrefix(lb, "http")+"/api/ws-heartbeat", h)
}

// closeCode reads until the connection fails and returns the close code:
// 0 when it ended without a close frame, -1 when it was still open after within.
func closeCode(c *websocket.Conn, within time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			var ne interface{ Timeout() bool }
			switch {
			case errors.As(err, &ce):
				return ce.Code
			case errors.As(err, &ne) && ne.Timeout():
				return -1
			}
			return 0
		}
	}
}

// TestIdleAndWebSocketHeartbeat: has_real_traffic falls to false about 10 s
// after the last counted request and comes back with a WebSocket "hb"; the
// socket checks origins, limits message size, drops silent peers, and says
// 1001 when the load balancer shuts down.
func TestIdleAndWebSocketHeartbeat(t *testing.T) {
	s := stacktest.Start(t,
		stacktest.WithEnv("load-balancer", "LB_STATS_CACHE", "1ms"),
		stacktest.WithEnv("load-balancer", "WS_PONG_WAIT", "1s"),
		stacktest.WithEnv("load-balancer", "WS_PING_PERIOD", "300ms"),
	)
	lb := s.LB()

	t.Run("idle after 10 s, live again on hb", func(t *testing.T) {
		httpc.Do(t, http.MethodGet, lb+"/api/health", nil)
		last := time.Now()
		if !getStats(t, lb).HasRealTraffic {
			t.Fatal("has_real_traffic false right after a request")
		}
		st := waitStats(t, lb, 13*time.Second, func(st stats) bool { return !st.HasRealTraffic })
		if idle := time.Since(last); idle < 9*time.Second {
			t.Fatalf("has_real_traffic went false %s after the last request, want about 10 s", idle)
		}
		if st.TotalRequests != 0 {
			t.Errorf("idle: total_requests %d, want 0", st.TotalRequests)
		}

		c, _, err := dial(t, lb, "") // no Origin: not a browser
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte("hb")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil || !strings.Contains(string(msg), `"type":"ack"`) {
			t.Fatalf("hb reply: got %q, %v; want an ack", msg, err)
		}
		st = getStats(t, lb)
		if !st.HasRealTraffic || st.WS.Heartbeats != 1 || st.WS.Clients != 1 {
			t.Fatalf("after one hb: got real=%v heartbeats=%d clients=%d, want true 1 1", st.HasRealTraffic, st.WS.Heartbeats, st.WS.Clients)
		}
		if st.TotalRequests != 0 {
			t.Errorf("a WebSocket heartbeat counted as a request")
		}
		// A reading client answers pings, so it outlives the 1 s pong wait.
		done := make(chan error, 1)
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					done <- err
					return
				}
			}
		}()
		err = <-done
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("a client answering pings was dropped: %v", err)
		}
	})

	t.Run("bad origin is refused with 403", func(t *testing.T) {
		_, resp, err := dial(t, lb, "http://evil.example")
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Fatalf("bad origin: got %d, %v; want 403", code, err)
		}
		for _, good := range []string{lb, strings.Replace(lb, "127.0.0.1", "localhost", 1)} {
			c, _, err := dial(t, lb, good)
			if err != nil {
				t.Fatalf("origin %s: %v", good, err)
			}
			c.Close()
		}
	})

	t.Run("oversize message closes with 1009", func(t *testing.T) {
		c, _, err := dial(t, lb, lb)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 4096))); err != nil {
			t.Fatal(err)
		}
		if got := closeCode(c, 5*time.Second); got != websocket.CloseMessageTooBig {
			t.Fatalf("oversize: got close %d, want 1009", got)
		}
	})

	t.Run("silent peer is dropped", func(t *testing.T) {
		c, _, err := dial(t, lb, lb)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Not reading means not answering pings: gone after the 1 s pong wait.
		waitClients(t, lb, "the silent peer counted", func(n int64) bool { return n >= 1 })
		waitClients(t, lb, "the silent peer dropped after its pong wait", func(n int64) bool { return n == 0 })
		if got := closeCode(c, 3*time.Second); got == -1 {
			t.Fatal("silent peer: the connection is still open")
		}
	})

	t.Run("shutdown sends 1001", func(t *testing.T) {
		c, _, err := dial(t, lb, lb)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		codes := make(chan int, 1)
		go func() { codes <- closeCode(c, 10*time.Second) }()
		waitClients(t, lb, "the client counted", func(n int64) bool { return n >= 1 })
		if code := s.Proc("load-balancer").Stop(10 * time.Second); code != 0 {
			t.Errorf("load balancer exit code %d, want 0", code)
		}
		if got := <-codes; got != websocket.CloseGoingAway {
			t.Fatalf("on shutdown: got close %d, want 1001", got)
		}
	})
}

// waitClients polls the load balancer's open WebSocket count until ok
// accepts it, for up to 5 s.
func waitClients(t *testing.T, lb, what string, ok func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := getLocal(t, lb).WSClients
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: ws clients %d after 5 s", what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"titanium/platform/upstream"
)

// The heartbeat hub caps its connections per client address and in all,
// refusing before the upgrade; a closed connection frees its slot.
func TestWebSocketConnectionCaps(t *testing.T) {
	lbURL, _ := startLB(t, map[string]string{"WS_MAX_CONNS": "3", "WS_MAX_CONNS_PER_ADDR": "2"})
	wsURL := "ws" + strings.TrimPrefix(lbURL, "http") + "/api/ws-heartbeat"
	dial := func(from string) (*websocket.Conn, int) {
		d := websocket.Dialer{HandshakeTimeout: 2 * time.Second, NetDialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second,
		}).DialContext}
		c, resp, err := d.Dial(wsURL, nil)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial from %s: %v", from, err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { c.Close() })
		return c, http.StatusSwitchingProtocols
	}
	first, _ := dial("127.0.0.1")
	if _, code := dial("127.0.0.1"); code != 101 {
		t.Fatalf("second from one address: %d, want 101", code)
	}
	if _, code := dial("127.0.0.1"); code != http.StatusTooManyRequests {
		t.Fatalf("third from one address: %d, want 429", code)
	}
	if _, code := dial("127.0.0.2"); code != 101 {
		t.Fatalf("another address: %d, want 101", code)
	}
	if _, code := dial("127.0.0.3"); code != http.StatusServiceUnavailable {
		t.Fatalf("over the global cap: %d, want 503", code)
	}
	first.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, code := dial("127.0.0.1"); code == 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not free its slot")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The aggregator forgets instances that left every pool, so that its
// last-seen map does not grow with every pod ever scheduled.
func TestAggregatorForgetsGoneInstances(t *testing.T) {
	inst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"service":"svc","instance":"svc-1","status":"ONLINE"}`)
	}))
	defer inst.Close()
	pool, err := upstream.New("svc", []string{inst.URL}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := newAggregator("lb-test", []*upstream.Pool{pool}, nil, newTraffic(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 100 {
		a.seen[fmt.Sprintf("http://10.0.0.%d:8001/stats", i)] = seenInstance{name: "gone", at: time.Now()}
	}
	a.collect()
	if len(a.seen) != 1 {
		t.Errorf("seen holds %d instances after a fan-out to 1, want 1: %v", len(a.seen), a.seen)
	}
}

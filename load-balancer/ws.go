package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"titanium/platform/apierr"
)

// wsConfig are the heartbeat socket's limits and deadlines; the defaults are
// those of gorilla's chat example (pong wait 60 s, ping period 9/10 of it,
// write wait 10 s).
type wsConfig struct {
	allowed          map[string]bool // normalised scheme://host[:port]
	pongWait         time.Duration
	pingPeriod       time.Duration
	writeWait        time.Duration
	readLimit        int64
	handshakeTimeout time.Duration
	// maxConns and maxPerAddr cap the open connections, in all and per
	// client address: each holds two goroutines and its buffers for as long
	// as its peer answers pings.
	maxConns, maxPerAddr int
}

// hub serves GET /api/ws-heartbeat and owns every heartbeat connection: one
// reader (the handler goroutine) and one writer goroutine per connection,
// both ending when the connection does.
type hub struct {
	cfg      wsConfig
	traffic  *traffic
	logger   *slog.Logger
	upgrader websocket.Upgrader

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	open    int            // connections admitted, upgraded or upgrading
	perAddr map[string]int // open by client address
	closing bool
	wg      sync.WaitGroup
}

type wsConn struct {
	c        *websocket.Conn
	send     chan []byte
	done     chan struct{} // closed by the reader when it stops
	shutdown chan struct{} // closed by the hub on server shutdown
}

func newHub(cfg wsConfig, t *traffic, logger *slog.Logger) *hub {
	h := &hub{cfg: cfg, traffic: t, logger: logger, conns: map[*wsConn]struct{}{}, perAddr: map[string]int{}}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.handshakeTimeout,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		CheckOrigin:      h.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			code := apierr.CodeBadRequest
			if status == http.StatusForbidden {
				code = apierr.CodeForbidden
			}
			apierr.Respond(w, status, &apierr.Error{Code: code, Message: reason.Error()})
		},
	}
	return h
}

// checkOrigin allows requests without Origin (not a browser, so no
// cross-site risk), the configured origins, and same-origin requests (Origin
// host equal to the Host the browser asked for). Never "return true": that
// would let any web page drive the socket. (It is the usual "fix" when
// gorilla/websocket's default check, Origin against Host, fails behind a
// proxy that rewrites Host.)
func (h *hub) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if h.cfg.allowed[strings.ToLower(u.Scheme+"://"+u.Host)] {
		return true
	}
	return strings.EqualFold(u.Host, r.Host)
}

// admit takes a connection slot for addr, before the upgrade so that
// concurrent handshakes cannot overshoot; release gives it back.
func (h *hub) admit(addr string) (code string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.open >= h.cfg.maxConns:
		return apierr.CodeUnavailable, false
	case h.perAddr[addr] >= h.cfg.maxPerAddr:
		return apierr.CodeRateLimited, false
	}
	h.open++
	h.perAddr[addr]++
	return "", true
}

func (h *hub) release(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open--
	if h.perAddr[addr]--; h.perAddr[addr] <= 0 {
		delete(h.perAddr, addr)
	}
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The balancer is the edge: the direct peer is the client.
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	if code, ok := h.admit(addr); !ok {
		w.Header().Set("Retry-After", "5")
		apierr.WriteCode(w, code, "too many heartbeat connections")
		return
	}
	defer h.release(addr)
	c, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.logger.DebugContext(r.Context(), "websocket upgrade refused", "err", err)
		return // the upgrader has answered
	}
	wc := &wsConn{c: c, send: make(chan []byte, 4), done: make(chan struct{}), shutdown: make(chan struct{})}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		_ = c.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(h.cfg.writeWait))
		_ = c.Close()
		return
	}
	h.conns[wc] = struct{}{}
	h.wg.Add(2)
	h.mu.Unlock()
	h.traffic.wsClients.Add(1)
	h.traffic.wsActivity(time.Now())
	go h.write(wc)
	h.read(wc)
}

// read is the connection's only reader: "hb" messages and pongs mark
// activity and push the read deadline; a silent peer misses it and is dropped.
func (h *hub) read(wc *wsConn) {
	defer func() {
		close(wc.done)
		h.mu.Lock()
		delete(h.conns, wc)
		h.mu.Unlock()
		h.traffic.wsClients.Add(-1)
		h.wg.Done()
	}()
	c := wc.c
	// Over the limit gorilla answers with close 1009 and ReadMessage fails.
	c.SetReadLimit(h.cfg.readLimit)
	_ = c.SetReadDeadline(time.Now().Add(h.cfg.pongWait))
	c.SetPongHandler(func(string) error {
		now := time.Now()
		h.traffic.wsActivity(now)
		return c.SetReadDeadline(now.Add(h.cfg.pongWait))
	})
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage || strings.TrimSpace(string(msg)) != "hb" {
			continue
		}
		now := time.Now()
		h.traffic.heartbeat(now)
		_ = c.SetReadDeadline(now.Add(h.cfg.pongWait))
		ack := strconv.AppendInt([]byte(`{"type":"ack","ts":`), now.UnixMilli(), 10)
		select {
		case wc.send <- append(ack, '}'):
		default: // the writer is stuck; the write deadline will end it
		}
	}
}

// write is the connection's only writer: acks, pings, and the close frame
// on shutdown. It closes the connection when it ends, which ends the reader.
func (h *hub) write(wc *wsConn) {
	tick := time.NewTicker(h.cfg.pingPeriod)
	defer func() {
		tick.Stop()
		_ = wc.c.Close()
		h.wg.Done()
	}()
	c := wc.c
	for {
		select {
		case msg := <-wc.send:
			_ = c.SetWriteDeadline(time.Now().Add(h.cfg.writeWait))
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-tick.C:
			_ = c.SetWriteDeadline(time.Now().Add(h.cfg.writeWait))
			if err := c.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		case <-wc.shutdown:
			_ = c.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(h.cfg.writeWait))
			return
		case <-wc.done:
			return
		}
	}
}

// shutdown sends every connection a close frame (1001 going away). It runs
// from http.Server.RegisterOnShutdown: Shutdown does not wait for hijacked
// connections, so this is how they learn.
func (h *hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return
	}
	h.closing = true
	for wc := range h.conns {
		close(wc.shutdown)
	}
}

// wait waits up to d for every connection's goroutines to end.
func (h *hub) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		h.logger.Warn("websocket connections still open after shutdown wait", "wait", d)
	}
}

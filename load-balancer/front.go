package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"

	"titanium/platform/apierr"
	"titanium/platform/service"
	"titanium/platform/upstream/fastproxy"
)

// front is the load balancer's fast path: a fasthttp server on the public
// listener that forwards the proxied routes (/, /api/*, /blog/) itself, in
// the connection's goroutine, over pooled upstream connections. Everything
// else, the balancer's own routes (/stats, /stats/local, /healthz, /readyz,
// /metrics, the WebSocket heartbeat), upgrades, and paths that are not in
// canonical form, goes to the net/http handler chain: the connection is
// handed off with the request it carried, and net/http serves it from then
// on exactly as it would without the front.
type front struct {
	srv     *fasthttp.Server
	svc     *service.Server
	ui, api *fastproxy.Forwarder
	traffic *traffic // nil when LB_TRAFFIC_STATS is off
	// maxBody caps a request body (LB_MAX_BODY_BYTES). fasthttp allocates
	// the declared length before it reads a byte, so this cap is also what
	// one connection can make the balancer hold.
	maxBody int
	logger  *slog.Logger
}

// frontReadBuffer is also the largest request head accepted; the net/http
// chain's limits are in platform/service.
const frontReadBuffer = 16 << 10

// frontWriteBuffer holds a whole answer of up to this size (header and
// body), so that it leaves in one write. fasthttp would send a larger one
// with writev, but only on a bare *net.TCPConn, and the front's connections
// are platform/sockio's: with fasthttp's 4 KiB default, a 20-post list
// page (about 4 KiB with its header) went out in two writes.
const frontWriteBuffer = 8 << 10

func newFront(svc *service.Server, ui, api *fastproxy.Forwarder, t *traffic, maxBody int, logger *slog.Logger) *front {
	f := &front{svc: svc, ui: ui, api: api, traffic: t, maxBody: maxBody, logger: logger}
	cfg := svc.Config
	f.srv = &fasthttp.Server{
		Handler:      f.handle,
		ErrorHandler: f.badRequest,
		// A request head must arrive within ReadHeaderTimeout of its first
		// byte (a new connection's first byte too), as on net/http; a body
		// then gets ReadTimeout (bodyTimeout).
		ReadTimeout:                  cfg.ReadHeaderTimeout,
		HeaderReceived:               f.bodyTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		ReadBufferSize:               frontReadBuffer,
		WriteBufferSize:              frontWriteBuffer,
		MaxRequestBodySize:           maxBody,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		KeepHijackedConns:            true, // handed-off connections belong to net/http
		Logger:                       fastLogger{logger},
	}
	return f
}

// bodyTimeout gives a request with a body the platform's read timeout to
// arrive whole, as net/http's ReadTimeout does.
func (f *front) bodyTimeout(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: f.svc.Config.ReadTimeout}
}

// Serve implements service.Front.
func (f *front) Serve(ln net.Listener) error { return f.srv.Serve(ln) }

// Shutdown implements service.Front.
func (f *front) Shutdown(ctx context.Context) error { return f.srv.ShutdownWithContext(ctx) }

// ownRoutes are served by the net/http chain.
var ownRoutes = map[string]bool{
	"/stats": true, "/stats/local": true, "/healthz": true, "/readyz": true, "/metrics": true,
	"/api/ws-heartbeat": true,
}

func (f *front) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	path := ctx.Path()
	if f.handsOff(ctx, path) {
		f.handoff(ctx)
		return
	}
	route, fw := "/", f.ui
	switch {
	case bytes.HasPrefix(path, []byte("/api/")):
		route, fw = "/api/", f.api
	case bytes.HasPrefix(path, []byte("/blog/")):
		route, fw = "/blog/", f.api
	case string(path) == "/blog":
		route, fw = "/blog", f.api
	}
	method := methodName(ctx.Method())
	count := f.traffic != nil && route == "/api/" && countedHeader(&ctx.Request.Header)
	id := service.NewRequestID(string(ctx.Request.Header.Peek(service.RequestIDHeader)))
	// Every copy goes, then ours: Set alone replaces only the first.
	ctx.Request.Header.Del(service.RequestIDHeader)
	ctx.Request.Header.Set(service.RequestIDHeader, id)
	status := fasthttp.StatusInternalServerError
	defer func() {
		if p := recover(); p != nil {
			f.logger.Error("panic serving request", "method", method, "path", string(path), "panic", p, "stack", string(debug.Stack()))
			status = fastproxy.WriteError(ctx, apierr.CodeInternal, "internal server error")
		}
		ctx.Response.Header.Del(service.RequestIDHeader)
		ctx.Response.Header.Set(service.RequestIDHeader, id)
		end := time.Now()
		d := end.Sub(start)
		if count {
			f.traffic.requests.Record(end, d, status >= 500)
		}
		f.svc.Observe(route, method, status, d, func() (string, string) { return string(path), id })
	}()
	status = fw.Forward(ctx)
}

// methods are the common methods as constant strings.
var methods = [...]string{fasthttp.MethodGet, fasthttp.MethodPost, fasthttp.MethodHead, fasthttp.MethodPatch,
	fasthttp.MethodDelete, fasthttp.MethodPut, fasthttp.MethodOptions}

// methodName is the method as a constant string, so that the common ones
// cost no allocation.
func methodName(m []byte) string {
	for _, k := range methods {
		if string(m) == k {
			return k
		}
	}
	return string(m)
}

// handsOff reports whether the request goes to the net/http chain.
func (f *front) handsOff(ctx *fasthttp.RequestCtx, path []byte) bool {
	if ownRoutes[string(path)] {
		return true
	}
	h := &ctx.Request.Header
	if len(h.Peek("Upgrade")) > 0 || h.IsConnect() {
		return true
	}
	// fasthttp routes on the normalized, decoded path and would forward
	// that; net/http redirects a non-canonical path and keeps escapes as
	// sent. Anything whose raw path differs, or has escapes, goes there.
	raw := h.RequestURI()
	if i := bytes.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return !bytes.Equal(raw, path) || bytes.IndexByte(raw, '%') >= 0
}

// handoff gives the connection to net/http with the request replayed in
// front of whatever the client sends next.
func (f *front) handoff(ctx *fasthttp.RequestCtx) {
	var hdr fasthttp.RequestHeader
	ctx.Request.Header.CopyTo(&hdr)
	hdr.SetNoDefaultContentType(true)
	body := ctx.Request.Body()
	// fasthttp has already read (and de-chunked) the body and answered any
	// Expect: 100-continue.
	hdr.Del("Expect")
	hdr.Del("Transfer-Encoding")
	if len(body) > 0 || !hdr.IsGet() && !hdr.IsHead() {
		hdr.SetContentLength(len(body))
	}
	replay := append(hdr.Header(), body...)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		if err := f.svc.Handoff(&replayConn{Conn: c, replay: replay}); err != nil {
			f.logger.Debug("handoff refused", "err", err)
		}
	})
}

// replayConn reads replay before the connection's own bytes.
type replayConn struct {
	net.Conn
	replay []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// countedHeader is counted for the front's fasthttp request header.
func countedHeader(h *fasthttp.RequestHeader) bool {
	return realTraffic(h.IsHead(), string(h.Peek("X-Heartbeat")))
}

// badRequest answers a request fasthttp could not read, in JSON. A request
// that did not arrive in time gets no answer: the connection is closed, as
// net/http closes it (an idle connection a client dialled ahead must not
// receive an unasked response, and a slowloris deserves none).
func (f *front) badRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		f.logger.Debug("request not received in time", "err", err)
		_ = ctx.Conn().Close()
		return
	}
	code, msg := apierr.CodeBadRequest, "malformed request"
	switch {
	case errors.As(err, &small):
		code, msg = apierr.CodeRequestHeaderFields, fmt.Sprintf("request head over %d bytes", frontReadBuffer)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code, msg = apierr.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", f.maxBody)
	}
	f.logger.Debug("bad request", "err", err)
	fastproxy.WriteError(ctx, code, msg)
	ctx.SetConnectionClose()
}

// fastLogger routes fasthttp's own messages to slog at debug level.
type fastLogger struct{ l *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.l.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
}

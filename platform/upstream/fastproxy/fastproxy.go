// Package fastproxy is the load balancer's fasthttp transport beneath the
// forwarding policy of package upstream: requests already parsed by a
// fasthttp server go to a pool's instances over pooled HTTP/1.1
// connections, in the calling goroutine. It lives apart from upstream so
// that services which only use the net/http proxy do not link fasthttp.
package fastproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"titanium/platform/apierr"
	"titanium/platform/clientip"
	"titanium/platform/sockio"
	"titanium/platform/upstream"
)

// Options configure New. Zero values take the defaults below.
type Options struct {
	// Timeout bounds one exchange with an instance: connect, request,
	// response headers and body (default 5 s).
	Timeout time.Duration
	// DialTimeout bounds a connect (default 1 s).
	DialTimeout time.Duration
	// IdleConnTimeout closes idle upstream connections (default 30 s, under
	// our servers' 60 s idle timeout, so that the proxy closes first).
	IdleConnTimeout time.Duration
	// MaxConnsPerHost caps the connections to one instance (default 512);
	// a request waits up to Timeout for a free one.
	MaxConnsPerHost int
	// MaxResponseBodySize caps a response body (default 64 MiB); a larger
	// one is a 502. Responses are buffered whole, as nginx buffers them.
	MaxResponseBodySize int
	// Retry sends a request once more, on another instance if there is
	// one, when it could not connect (any method: nothing was sent), or when
	// an idempotent request without a body lost its connection before any
	// response. A POST that reached an instance is never replayed.
	Retry bool
	// Logger receives upstream errors (default: the pool's).
	Logger *slog.Logger
	// Trusted are TLS-terminating proxies in front of the edge (see
	// EdgeBehind); none by default: the peer is the client.
	Trusted clientip.Resolver
}

// Forwarder forwards requests already parsed by a fasthttp server to a pool's
// instances over pooled HTTP/1.1 connections, in the calling goroutine:
// no per-request goroutine hand-offs, no header maps. It keeps NewProxy's
// contract: instance selection, passive health, the one safe retry, JSON
// 502/504 answers and edge forwarding headers.
type Forwarder struct {
	pool   *upstream.Pool
	o      Options
	logger *slog.Logger
	dialer net.Dialer

	// clients are the connection pools by instance, made on first use and
	// replaced copy-on-write, so that the request path reads them with one
	// atomic load and a map lookup.
	mu      sync.Mutex
	clients atomic.Pointer[map[*upstream.Host]*fasthttp.HostClient]
}

// New returns a forwarder to pool's instances.
func New(pool *upstream.Pool, o Options) *Forwarder {
	o.Timeout = upstream.OrDefault(o.Timeout, 5*time.Second)
	o.DialTimeout = upstream.OrDefault(o.DialTimeout, time.Second)
	o.IdleConnTimeout = upstream.OrDefault(o.IdleConnTimeout, 30*time.Second)
	o.MaxConnsPerHost = upstream.OrDefault(o.MaxConnsPerHost, 512)
	o.MaxResponseBodySize = upstream.OrDefault(o.MaxResponseBodySize, 64<<20)
	if o.Logger == nil {
		o.Logger = pool.Logger()
	}
	f := &Forwarder{pool: pool, o: o, logger: o.Logger, dialer: net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}}
	f.clients.Store(&map[*upstream.Host]*fasthttp.HostClient{})
	return f
}

// client is h's connection pool, made on first use. Clients of hosts gone
// from the pool (a DNS change) are dropped when the next one is made; their
// idle connections close after IdleConnTimeout and their cleaner goroutine
// then ends.
func (f *Forwarder) client(h *upstream.Host) *fasthttp.HostClient {
	if c, ok := (*f.clients.Load())[h]; ok {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.clients.Load()
	if c, ok := old[h]; ok {
		return c
	}
	c := &fasthttp.HostClient{
		Addr:                      h.Addr(),
		Dial:                      f.dial,
		MaxConns:                  f.o.MaxConnsPerHost,
		MaxConnWaitTimeout:        f.o.Timeout,
		MaxIdleConnDuration:       f.o.IdleConnTimeout,
		MaxResponseBodySize:       f.o.MaxResponseBodySize,
		ReadBufferSize:            16 << 10,
		MaxIdemponentCallAttempts: 1, // retries are Forward's decision alone
		NoDefaultUserAgentHeader:  true,
		ConnPoolStrategy:          fasthttp.LIFO, // warm connections first; the rest idle out
	}
	next := make(map[*upstream.Host]*fasthttp.HostClient, len(old)+1)
	for _, live := range f.pool.Hosts() {
		if lc, ok := old[live]; ok {
			next[live] = lc
		}
	}
	next[h] = c
	f.clients.Store(&next)
	return c
}

func (f *Forwarder) dial(addr string) (net.Conn, error) {
	c, err := f.dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return guard(sockio.Wrap(c)), nil
}

// maxStaleRetries bounds the resends of a request that met closed idle
// connections.
const maxStaleRetries = 2

// hopHeaders are removed in both directions (RFC 9110 section 7.6.1), as
// httputil.ReverseProxy removes them. Connection and Transfer-Encoding are
// fasthttp's own fields and handled by it.
var hopHeaders = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// forwardingHeaders are the client-address headers an edge replaces: every
// copy a client sent is removed before the edge writes its own.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip"}

// Forward sends ctx's request to an instance and puts the answer, or a JSON
// error, in ctx's response; it returns the status written. The request is
// modified in place: the forwarding headers become the edge's own (whatever
// the client sent in X-Forwarded-* and X-Real-Ip is replaced) and hop-by-hop
// headers go. The caller must have refused upgrades.
func (f *Forwarder) Forward(ctx *fasthttp.RequestCtx) int {
	req := &ctx.Request
	closeAfter := req.Header.ConnectionClose() // also true for an HTTP/1.0 client without keep-alive
	req.Header.ResetConnectionClose()
	// A request without Content-Type goes without one (fasthttp would add
	// text/plain).
	req.Header.SetNoDefaultContentType(true)
	if !req.Header.IsHTTP11() {
		// Upstream connections stay HTTP/1.1 keep-alive whatever the client speaks.
		req.Header.SetProtocol("HTTP/1.1")
	}
	stripHop(&req.Header)
	// The body is already read whole (the server answered any 100-continue).
	req.Header.Del("Expect")
	e := f.edge(ctx)
	// Del removes every copy of a header, Set only the first: a client's
	// second X-Forwarded-For line would otherwise reach the gateway next to
	// ours and pass for the client address.
	for _, k := range forwardingHeaders {
		req.Header.Del(k)
	}
	req.Header.Set("X-Forwarded-For", e.Client)
	req.Header.Set("X-Real-Ip", e.Client)
	req.Header.SetBytesV("X-Forwarded-Host", req.Header.Host())
	req.Header.Set("X-Forwarded-Proto", e.Proto)

	status := f.forward(ctx)
	resp := &ctx.Response
	resp.Header.ResetConnectionClose()
	if closeAfter {
		resp.SetConnectionClose()
	}
	return status
}

// edge applies the shared forwarding policy (Edge) to ctx's request.
func (f *Forwarder) edge(ctx *fasthttp.RequestCtx) upstream.EdgeHeaders {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	if len(f.o.Trusted.Trusted) == 0 {
		return upstream.EdgeHeaders{Client: peer.Unmap().String(), Proto: "http"}
	}
	values := func(k string) []string {
		var out []string
		for _, v := range ctx.Request.Header.PeekAll(k) {
			out = append(out, string(v))
		}
		return out
	}
	return upstream.Edge(peer, values("X-Forwarded-For"), values("X-Forwarded-Proto"), f.o.Trusted)
}

func (f *Forwarder) forward(ctx *fasthttp.RequestCtx) int {
	req, resp := &ctx.Request, &ctx.Response
	h := f.pool.Select(nil)
	if h == nil {
		return f.fail(ctx, upstream.ErrNoInstance)
	}
	noHost := len(req.Header.Host()) == 0
	err := f.try(h, req, resp, noHost)
	// Connections the instance closed while idle: the request was not
	// written, so it goes again whatever its method, on another instance
	// when there is one (the instance is likely shutting down).
	for i := 0; i < maxStaleRetries && errors.Is(err, errStaleConn); i++ {
		// Its other idle connections are as likely to be closed.
		f.client(h).CloseIdleConnections()
		if other := f.pool.SelectOther(nil, h); other != nil {
			h = other
		}
		err = f.try(h, req, resp, noHost)
	}
	// A failed connect sent nothing: any method may go elsewhere. A
	// connection lost before an answer may have delivered the request:
	// only idempotent methods go again.
	if err != nil && f.o.Retry && (upstream.IsDialError(err) || retryable(req) && isConnLost(err)) {
		other := f.pool.SelectOther(nil, h)
		if other == nil && !upstream.IsDialError(err) {
			// One instance whose pooled connection had closed under us: a
			// fresh connection to it is the retry.
			other = h
		}
		if other != nil {
			err = f.try(other, req, resp, noHost)
		}
	}
	if err != nil {
		return f.fail(ctx, err)
	}
	stripHop(&resp.Header)
	return resp.StatusCode()
}

func (f *Forwarder) try(h *upstream.Host, req *fasthttp.Request, resp *fasthttp.Response, noHost bool) error {
	if noHost {
		// An HTTP/1.0 request may come without Host; the upstream
		// connection is HTTP/1.1, which requires one. net/http's transport
		// sends the instance's address then, and so does this.
		req.SetHost(h.Addr())
		req.Header.SetHost(h.Addr())
	}
	h.Begin()
	err := f.client(h).DoTimeout(req, resp, f.o.Timeout)
	h.End()
	switch {
	case errors.Is(err, errStaleConn):
		// Not an exchange that failed: the connection was closed while idle.
	case err != nil:
		if upstream.IsDialError(err) || errors.Is(err, fasthttp.ErrTimeout) || upstream.IsTimeout(err) {
			f.pool.Fail(h, upstream.IsDialError(err), err.Error())
		}
	default:
		// Any status is an answer (see ejects).
		f.pool.Succeed(h)
	}
	return err
}

// retryable: idempotent methods without a body, as upstream's rule for net/http.
func retryable(req *fasthttp.Request) bool {
	if !req.Header.IsGet() && !req.Header.IsHead() && !req.Header.IsOptions() {
		return false
	}
	return len(req.Body()) == 0
}

// isConnLost is upstream.IsConnLost plus fasthttp's own word for a connection
// closed before the first response byte.
func isConnLost(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || upstream.IsConnLost(err)
}

// isTimeout is upstream.IsTimeout plus fasthttp's own timeout and its
// "no free connection" (every connection busy past the timeout).
func isTimeout(err error) bool {
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns) || upstream.IsTimeout(err)
}

func (f *Forwarder) fail(ctx *fasthttp.RequestCtx, err error) int {
	path := string(ctx.Path())
	if isTimeout(err) {
		f.logger.Warn("upstream timed out", "upstream", f.pool.Name(), "path", path, "err", err)
		return WriteError(ctx, apierr.CodeGatewayTimeout, f.pool.Name()+" did not answer in time")
	}
	f.logger.Warn("upstream unavailable", "upstream", f.pool.Name(), "path", path, "err", err)
	return WriteError(ctx, apierr.CodeBadGateway, f.pool.Name()+" is unavailable")
}

// WriteError replaces ctx's response with our JSON error for code and
// returns its status.
func WriteError(ctx *fasthttp.RequestCtx, code, message string) int {
	status := apierr.StatusOf(code)
	body, _ := json.Marshal(&apierr.Error{Code: code, Message: message})
	resp := &ctx.Response
	closeConn := resp.ConnectionClose()
	resp.Reset()
	if closeConn {
		resp.SetConnectionClose()
	}
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	resp.SetBody(append(body, '\n'))
	return status
}

// hopHeader is what stripHop needs of a request or response header.
type hopHeader interface {
	Peek(key string) []byte
	Del(key string)
	DelBytes(key []byte)
}

// stripHop removes the hop-by-hop headers, including those the Connection
// header names.
func stripHop(h hopHeader) {
	if c := h.Peek("Connection"); len(c) > 0 {
		for _, name := range bytes.Split(c, []byte(",")) {
			if name = bytes.TrimSpace(name); len(name) > 0 {
				h.DelBytes(name)
			}
		}
		h.Del("Connection")
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

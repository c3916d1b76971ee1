package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"titanium/platform/apierr"
	"titanium/platform/clientip"
	"titanium/platform/sockio"
)

// ProxyOptions configure NewProxy. Zero values take the seed's defaults.
type ProxyOptions struct {
	// ResponseHeaderTimeout bounds the wait for an upstream's headers (default 2 s).
	ResponseHeaderTimeout time.Duration
	// ExchangeTimeout, when set, bounds each attempt as a whole: connect,
	// request, response headers and body, as the load balancer's fasthttp
	// front bounds it (default 0: no bound beyond the headers'). A body
	// still streaming at the deadline is cut, and the client sees a
	// truncated answer. Upgraded connections are never bounded.
	ExchangeTimeout time.Duration
	// DialTimeout bounds a connect (default 1 s).
	DialTimeout time.Duration
	// IdleConnTimeout closes idle upstream connections (default 30 s).
	IdleConnTimeout time.Duration
	// ExpectContinueTimeout is the wait for a 100-continue (default 1 s).
	ExpectContinueTimeout time.Duration
	// MaxIdleConnsPerHost sizes the keep-alive pool per instance (default
	// 256). Go's default of 2 makes a proxy under load open and close
	// connections until ports run out in TIME_WAIT (caddy#938).
	MaxIdleConnsPerHost int
	// Forward sets the forwarding headers of the outbound request
	// (default EdgeForwarding).
	Forward func(*httputil.ProxyRequest)
	// Retry sends a request once more, on another instance when there is
	// one: any request whose connect failed (it never reached an instance;
	// its body, up to MaxReplayBody, is kept in memory to be sent again),
	// and an idempotent request without a body whose connection broke
	// before any response (the instance died under it).
	Retry bool
	// MaxReplayBody is the largest request body kept for that retry
	// (default 1 MiB + 64 KiB, the load balancer's body cap); a larger body
	// is streamed and its request never resent. A chunked body up to it is
	// sent on with a Content-Length.
	MaxReplayBody int64
	// Logger receives upstream errors (default: discard).
	Logger *slog.Logger
}

// NewProxy returns a reverse proxy to pool's instances. It refuses h2c
// upgrades, answers upstream failures with JSON (502 dead, 504 slow, 499
// client gone, 413 body over a cap), feeds passive health (connect errors
// and timeouts only), and with Retry sends a request once more when it
// could not connect (any method: it never reached an instance), or when an
// idempotent request without a body lost its connection before any answer.
// A request that may have reached an instance is never replayed unless
// idempotent: the fasthttp front (fastproxy) follows the same rule.
func NewProxy(pool *Pool, o ProxyOptions) http.Handler {
	o.defaults(pool)
	p := &proxy{pool: pool, logger: o.Logger}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The instance is chosen in the transport, per attempt; the
			// path and query go through unchanged and so does Host.
			o.Forward(pr)
		},
		// The proxying service echoes the request id itself (the one it
		// forwarded); the upstream's copy would be a second header line.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del(requestIDHeader)
			return nil
		},
		Transport:    newPoolTransport(pool, o),
		BufferPool:   bufferPool{},
		ErrorHandler: p.fail,
		ErrorLog:     slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	return p
}

// NewTransport returns the transport NewProxy uses, for a service that calls
// an upstream itself. Each request goes to an instance pool selects (its
// URL's scheme and host become the instance's, and so does Host when
// req.Host is empty), feeds passive health, and with o.Retry is sent once
// more as NewProxy's are. The transport fields of o apply; Forward does not.
// Each request must be the caller's own: it is pointed at the instance in
// place.
func NewTransport(pool *Pool, o ProxyOptions) http.RoundTripper {
	o.defaults(pool)
	return newPoolTransport(pool, o)
}

func (o *ProxyOptions) defaults(pool *Pool) {
	o.ResponseHeaderTimeout = OrDefault(o.ResponseHeaderTimeout, 2*time.Second)
	o.DialTimeout = OrDefault(o.DialTimeout, time.Second)
	o.MaxReplayBody = OrDefault(o.MaxReplayBody, 1<<20+64<<10)
	o.IdleConnTimeout = OrDefault(o.IdleConnTimeout, 30*time.Second)
	o.ExpectContinueTimeout = OrDefault(o.ExpectContinueTimeout, time.Second)
	o.MaxIdleConnsPerHost = OrDefault(o.MaxIdleConnsPerHost, 256)
	if o.Forward == nil {
		o.Forward = EdgeForwarding
	}
	if o.Logger == nil {
		o.Logger = pool.opts.Logger
	}
}

func newPoolTransport(pool *Pool, o ProxyOptions) *poolTransport {
	base := &http.Transport{
		DialContext:           sockio.DialContext((&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext),
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: o.ExpectContinueTimeout,
		// Pass encodings through untouched: decompressing is the client's job.
		DisableCompression: true,
	}
	return &poolTransport{pool: pool, base: base, retry: o.Retry, maxReplay: o.MaxReplayBody, exchange: o.ExchangeTimeout}
}

type proxy struct {
	pool   *Pool
	rp     *httputil.ReverseProxy
	logger *slog.Logger
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// An h2c upgrade would let the client speak HTTP/2 straight to the
	// upstream past our request handling (golang/go#80416).
	if up := r.Header["Upgrade"]; len(up) > 0 && hasToken(up, "h2c") {
		apierr.WriteCode(w, apierr.CodeBadRequest, "h2c upgrade is not supported")
		return
	}
	p.rp.ServeHTTP(w, r)
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// requestIDHeader carries the request id; every service echoes it.
const requestIDHeader = "X-Request-Id"

// ErrNoInstance: the pool has no instance at all.
var ErrNoInstance = errors.New("no instance configured")

// fail is the ReverseProxy ErrorHandler.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		// The client's body went over the cap on the way: its fault.
		apierr.WriteCode(w, apierr.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", tooLarge.Limit))
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away: not the upstream's fault (golang/go#20071).
		p.logger.DebugContext(r.Context(), "client closed request", "upstream", p.pool.name, "path", r.URL.Path)
		apierr.WriteCode(w, apierr.CodeClientClosed, "client closed request")
	case IsTimeout(err):
		p.logger.WarnContext(r.Context(), "upstream timed out", "upstream", p.pool.name, "path", r.URL.Path, "err", err)
		apierr.WriteCode(w, apierr.CodeGatewayTimeout, p.pool.name+" did not answer in time")
	default:
		p.logger.WarnContext(r.Context(), "upstream unavailable", "upstream", p.pool.name, "path", r.URL.Path, "err", err)
		apierr.WriteCode(w, apierr.CodeBadGateway, p.pool.name+" is unavailable")
	}
}

// IsTimeout reports whether err is a timeout after the connect: the
// instance is slow (a connect timeout is a dial error).
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !IsDialError(err)
}

// IsDialError reports whether err happened before the request reached the
// upstream: only then is a retry safe whatever the method.
func IsDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// IsConnLost reports whether the connection broke before any response came
// back (the instance died under the request). Retrying that is safe only for
// idempotent requests (RFC 9110 section 9.2.2), which is all retryable lets
// through; a timeout is not retried: the instance is slow, and a retry would
// double both the load and the wait.
func IsConnLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// poolTransport picks the instance for each attempt and feeds passive health.
type poolTransport struct {
	pool      *Pool
	base      *http.Transport
	retry     bool
	maxReplay int64
	exchange  time.Duration
}

func (t *poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := t.pool.Select(req)
	if h == nil {
		return nil, ErrNoInstance
	}
	replay := t.retry && t.keepBody(req)
	resp, err := t.try(h, req)
	if err == nil || !t.retry || req.Context().Err() != nil {
		return resp, err
	}
	dial := IsDialError(err)
	if !(dial && replay) && !(retryable(req) && IsConnLost(err)) {
		return resp, err
	}
	other := t.pool.SelectOther(req, h)
	if other == nil && !dial {
		// One instance whose connection broke under us: a fresh
		// connection to it is the retry, as on the fasthttp front.
		other = h
	}
	if other == nil {
		return resp, err
	}
	if req.GetBody != nil {
		// The transport closed the body of the failed attempt.
		if req.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.try(other, req)
}

// keepBody makes req's body resendable, so that a request whose connect
// failed can go to another instance whatever its method, as on the fasthttp
// front (which holds every body in memory anyway). A body up to maxReplay
// is read into memory first (a chunked one then goes on with a
// Content-Length); a larger one is left streaming, and keepBody reports
// false.
func (t *poolTransport) keepBody(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if req.ContentLength == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return true
	}
	if req.ContentLength > t.maxReplay {
		return false
	}
	var buf []byte
	var err error
	if req.ContentLength > 0 {
		buf = make([]byte, req.ContentLength)
		var n int
		n, err = io.ReadFull(req.Body, buf)
		buf = buf[:n]
	} else {
		// Chunked: read one byte past the limit to learn whether it fits.
		buf, err = io.ReadAll(io.LimitReader(req.Body, t.maxReplay+1))
		if err == nil && int64(len(buf)) > t.maxReplay {
			req.Body = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
			return false
		}
	}
	if err != nil {
		// A short or broken body: hand what came and the error on to the
		// transport, which reports it as the client's fault.
		req.Body = readCloser{io.MultiReader(bytes.NewReader(buf), errReader{err}), req.Body}
		return false
	}
	req.ContentLength = int64(len(buf))
	req.TransferEncoding = nil
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	req.Body, _ = req.GetBody()
	return true
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// retryable: idempotent methods without a body. A POST is never replayed.
func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

func (t *poolTransport) try(h *Host, req *http.Request) (*http.Response, error) {
	// The outbound request belongs to this proxy call alone (ReverseProxy
	// cloned it), so pointing it at the instance in place saves a clone.
	req.URL.Scheme, req.URL.Host = h.url.Scheme, h.url.Host
	client := req.Context()
	out, cancel := req, context.CancelFunc(nil)
	if t.exchange > 0 && len(req.Header["Upgrade"]) == 0 {
		var ctx context.Context
		ctx, cancel = context.WithTimeout(client, t.exchange)
		out = req.WithContext(ctx)
	}
	h.Begin()
	resp, err := t.base.RoundTrip(out)
	h.End()
	switch {
	case err != nil:
		// A client that left says nothing about h, and nor does a body
		// the client broke or sent over the cap.
		if client.Err() == nil && Ejects(err) {
			t.pool.Fail(h, IsDialError(err), err.Error())
		}
	default:
		t.pool.Succeed(h)
	}
	if cancel != nil {
		if err != nil {
			cancel()
		} else {
			resp.Body = cancelOnClose{resp.Body, cancel}
		}
	}
	return resp, err
}

// cancelOnClose ends an attempt's deadline when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Ejects reports whether err counts against the instance: only a failed
// connect or a timeout does. A status, even 502/503/504, is an answer: the
// gateway relays its own upstreams' 503s, and a client can provoke errors at
// will (a malformed request, a body over the cap); counting either would let
// anyone eject healthy instances. A dead instance is found by its connects
// failing and by the active health check.
func Ejects(err error) bool { return IsDialError(err) || IsTimeout(err) }

const copyBufferSize = 32 << 10

// bufferPool reuses the proxy's copy buffers. It stores array pointers so
// that Put does not allocate.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

func (bufferPool) Get() []byte { return copyBuffers.Get().(*[copyBufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= copyBufferSize {
		copyBuffers.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}

// EdgeForwarding is for the public entry point: whatever the client sent in
// X-Forwarded-* and X-Real-IP is discarded (Rewrite already strips
// X-Forwarded-*), and the peer address becomes the client address.
func EdgeForwarding(pr *httputil.ProxyRequest) { edgeBehind(pr, clientip.Resolver{}) }

// EdgeBehind is EdgeForwarding for an edge with a TLS-terminating proxy in
// front of it (an Ingress controller) in trusted: from such a peer, the
// client address is taken from its one X-Forwarded-For line (as clientip
// does) and an X-Forwarded-Proto of https is kept. Nothing else the
// client sent survives, and from any other peer it is EdgeForwarding.
func EdgeBehind(trusted clientip.Resolver) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) { edgeBehind(pr, trusted) }
}

func edgeBehind(pr *httputil.ProxyRequest, trusted clientip.Resolver) {
	out, in := pr.Out.Header, pr.In.Header
	out.Del("X-Real-Ip")
	host, _, err := net.SplitHostPort(pr.In.RemoteAddr)
	peer, perr := netip.ParseAddr(host)
	if err != nil || perr != nil {
		pr.SetXForwarded()
		return
	}
	e := Edge(peer, in.Values("X-Forwarded-For"), in.Values("X-Forwarded-Proto"), trusted)
	out["X-Forwarded-For"] = []string{e.Client}
	out["X-Real-Ip"] = []string{e.Client}
	out["X-Forwarded-Host"] = []string{pr.In.Host}
	out["X-Forwarded-Proto"] = []string{e.Proto}
}

// EdgeHeaders are the forwarding headers an edge writes, whatever the
// serving path.
type EdgeHeaders struct {
	Client string // X-Forwarded-For and X-Real-Ip
	Proto  string // X-Forwarded-Proto: http, or https behind a trusted TLS proxy
}

// Edge is the edge's forwarding policy, shared by both serving paths: the
// client is the peer unless trusted says the peer is our own TLS proxy, and
// then the client it names; the scheme is http unless that proxy says https.
func Edge(peer netip.Addr, xff, proto []string, trusted clientip.Resolver) EdgeHeaders {
	e := EdgeHeaders{Client: peer.Unmap().String(), Proto: "http"}
	if len(trusted.Trusted) == 0 || !trusted.IsTrusted(peer) {
		return e
	}
	e.Client = trusted.FromForwarded(peer.Unmap(), xff).String()
	if len(proto) == 1 && strings.EqualFold(proto[0], "https") {
		e.Proto = "https"
	}
	return e
}

// TrustedForwarding keeps the forwarding headers of a trusted peer (our own
// load balancer) and appends the peer to X-Forwarded-For; from any other
// peer it behaves as EdgeForwarding.
func TrustedForwarding(trusted func(netip.Addr) bool) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		host, _, err := net.SplitHostPort(pr.In.RemoteAddr)
		peer, perr := netip.ParseAddr(host)
		in := pr.In.Header
		if err != nil || perr != nil || !trusted(peer.Unmap()) || duplicated(in) {
			EdgeForwarding(pr)
			return
		}
		if xff := in["X-Forwarded-For"]; len(xff) > 0 {
			pr.Out.Header["X-Forwarded-For"] = xff
		}
		pr.SetXForwarded()
		for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := in[k]; len(v) > 0 {
				pr.Out.Header[k] = v
			}
		}
		if len(in["X-Real-Ip"]) == 0 {
			pr.Out.Header["X-Real-Ip"] = []string{host}
		}
	}
}

// duplicated reports whether h carries a forwarding header more than once.
// Our edge writes each exactly once; a second copy was the client's, left
// beside ours by a proxy that replaced only the first, so none is believed.
func duplicated(h http.Header) bool {
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip"} {
		if len(h[k]) > 1 {
			return true
		}
	}
	return false
}

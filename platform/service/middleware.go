package service

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"titanium/platform/apierr"
	"titanium/platform/window"
)

// StatusRecorder remembers the status a handler writes while keeping the
// Flusher and Hijacker of the writer it wraps (WebSocket upgrades and
// streaming pass through it). Reset readies one for reuse from a pool.
type StatusRecorder struct {
	http.ResponseWriter
	status int
}

// Reset makes r record for w from scratch.
func (r *StatusRecorder) Reset(w http.ResponseWriter) { r.ResponseWriter, r.status = w, 0 }

// WriteHeader records the first status written.
func (r *StatusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *StatusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush sends what is buffered; a flush before any header commits a 200.
func (r *StatusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Hijack hands the connection over; the status is then 101.
func (r *StatusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *StatusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Status is the status written so far; 200 when the handler wrote nothing.
func (r *StatusRecorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// recorder is the instrumentation's StatusRecorder: it also turns a
// plain-text http.Error answer into our JSON error.
type recorder struct {
	StatusRecorder
	// replaced is set when a plain-text http.Error answer was turned into
	// our JSON error; the original text body is then dropped.
	replaced bool
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 400 && isPlainHTTPError(rec.Header()) {
		rec.status = code
		rec.replaced = true
		rec.Header().Del("Content-Length")
		apierr.Respond(rec.ResponseWriter, code, &apierr.Error{Code: apierr.CodeFor(code), Message: strings.ToLower(http.StatusText(code))})
		return
	}
	rec.StatusRecorder.WriteHeader(code)
}

// isPlainHTTPError recognizes the headers http.Error sets: that is how
// net/http itself answers (ServeMux's 404 and 405, MaxBytesReader...), and
// every error we send must be JSON.
func isPlainHTTPError(h http.Header) bool {
	return h.Get("Content-Type") == "text/plain; charset=utf-8" && h.Get("X-Content-Type-Options") == "nosniff"
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.replaced {
		return len(b), nil
	}
	return rec.StatusRecorder.Write(b)
}

// httpMetrics are the RED metrics every service exports.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series caches each label set's counter and histogram: looking them
	// up in the vectors hashes the labels under a lock on every request.
	// The label sets are bounded (route templates, standard methods,
	// status codes), and so is the cache.
	series sync.Map // seriesKey → *series
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// observe counts one request in the series of its labels.
func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	key := seriesKey{route, method, status}
	v, ok := m.series.Load(key)
	if !ok {
		code := strconv.Itoa(status)
		v, _ = m.series.LoadOrStore(key, &series{
			requests: m.requests.WithLabelValues(route, method, code),
			duration: m.duration.WithLabelValues(route, method, code),
		})
	}
	sr := v.(*series)
	sr.requests.Inc()
	sr.duration.Observe(d.Seconds())
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency in seconds, by route template, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// methodLabel bounds the method label to the standard methods, so a client
// cannot mint label values.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// instrument is the outermost middleware: request id, panic recovery, access
// log, Prometheus metrics and the /stats window. The route label is the
// ServeMux pattern that matched (never the raw path), "unmatched" otherwise.
func (s *Server) instrument(next http.Handler) http.Handler {
	return requestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{StatusRecorder: StatusRecorder{ResponseWriter: w}}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(p)
				}
				s.Logger.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					apierr.WriteCode(rec, apierr.CodeInternal, "internal server error")
				}
			}
			s.observe(r, rec.Status(), time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	}))
}

func (s *Server) observe(r *http.Request, status int, d time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.observeRoute(r.Context(), route, r.Method, r.URL.Path, status, d)
}

func (s *Server) observeRoute(ctx context.Context, route, method, path string, status int, d time.Duration) {
	s.record(route, method, status, d)
	if level := logLevelFor(status); s.Logger.Enabled(ctx, level) {
		s.logRequest(ctx, level, route, method, path, status, d)
	}
}

// record counts a request in the RED metrics and the /stats window.
func (s *Server) record(route, method string, status int, d time.Duration) {
	s.metrics.observe(route, methodLabel(method), status, d)
	if !s.internalRoutes[route] {
		s.window.Record(time.Now(), d, status >= 500 && status != apierr.StatusClientClosedRequest)
	}
}

// logLevelFor is the access log level: debug, warn for a 5xx.
func logLevelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

func (s *Server) logRequest(ctx context.Context, level slog.Level, route, method, path string, status int, d time.Duration) {
	s.Logger.Log(ctx, level, "request", "method", method, "route", route,
		"path", path, "status", status, "duration_ms", float64(d.Microseconds())/1000)
}

var errNotReady = errors.New("not ready")

// windowSpan is the length of every service's /stats request window.
const windowSpan = 10

func newWindow() *window.Window { return window.New(windowSpan) }

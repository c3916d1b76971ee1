// Package service is the lifecycle every Titanium service shares: a JSON
// logger, configuration from the environment, an HTTP server with the seed's
// timeouts that listens before it serves, the /healthz, /readyz, /metrics
// and /stats endpoints, RED metrics, panic recovery and a graceful shutdown
// (readiness fails, in-flight requests drain, exit 0).
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"titanium/platform/apierr"
	"titanium/platform/envconfig"
	"titanium/platform/sockio"
	"titanium/platform/topology"
	"titanium/platform/window"
)

// Check is a readiness check; it must honour ctx's deadline.
type Check func(ctx context.Context) error

// StatsFunc adds service-specific fields to /stats.
type StatsFunc func(ctx context.Context) map[string]any

// Server is one service's HTTP server and lifecycle.
type Server struct {
	Name     string
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Config   Config

	mux            *http.ServeMux
	ownStats       bool      // the service registered its own /stats
	statsOnce      sync.Once // adds the platform's /stats when it did not
	metrics        *httpMetrics
	window         *window.Window
	internalRoutes map[string]bool
	started        time.Time

	mu         sync.Mutex
	checks     []namedCheck
	stats      StatsFunc
	onShutdown []func()

	draining atomic.Bool
	ln       net.Listener
	srv      *http.Server
	// front, when set, serves ln; srv then serves what it hands off.
	front   Front
	handoff *connListener
	// internal routes are served on their own listener (SetInternal).
	internalAddr string
	internalMux  *http.ServeMux
	internalLn   net.Listener
	internalSrv  *http.Server
}

type namedCheck struct {
	name string
	fn   Check
}

// New builds a server with the platform endpoints registered.
func New(name string, cfg Config, logger *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		Name:     name,
		Logger:   logger,
		Registry: reg,
		Config:   cfg,
		mux:      http.NewServeMux(),
		metrics:  newHTTPMetrics(reg),
		window:   newWindow(),
		started:  time.Now(),
	}
	s.internalRoutes = map[string]bool{
		"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /stats": true,
	}
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return s
}

// Handle registers h for a ServeMux pattern; the pattern is the route label.
// A service may register its own /stats (the load balancer's is the whole
// system's); the platform's per-process /stats is served when it does not.
// Either way /stats requests stay out of the service's request window.
func (s *Server) Handle(pattern string, h http.Handler) {
	if routePath(pattern) == statsPath {
		s.ownStats = true
		s.internalRoutes[pattern] = true
	}
	s.mux.Handle(pattern, h)
}

// HandleFunc registers f for a ServeMux pattern, as Handle does.
func (s *Server) HandleFunc(pattern string, f http.HandlerFunc) { s.Handle(pattern, f) }

// statsPath is where every service answers its /stats.
const statsPath = "/stats"

// routePath is the path part of a ServeMux pattern ("[METHOD ][HOST]/PATH").
func routePath(pattern string) string {
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		pattern = strings.TrimLeft(rest, " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return pattern
}

// routes is the service's routes, with the platform's /stats unless the
// service registered its own; register every route before the first call.
func (s *Server) routes() *http.ServeMux {
	s.statsOnce.Do(func() {
		if !s.ownStats {
			s.mux.HandleFunc("GET "+statsPath, s.handleStats)
		}
	})
	return s.mux
}

// SetInternal makes HandleInternal's routes listen on addr, apart from the
// service's port: a port that monitoring (/metrics) or a proxy may reach must
// not also carry calls meant for our own services alone. Call before Open.
// Its callers may check it with /readyz and /healthz, served there too.
func (s *Server) SetInternal(addr string) {
	s.internalAddr = addr
	s.internalMux = http.NewServeMux()
	s.internalMux.HandleFunc("GET /healthz", s.handleHealthz)
	s.internalMux.HandleFunc("GET /readyz", s.handleReadyz)
}

// HandleInternal registers h on the internal listener (SetInternal first).
func (s *Server) HandleInternal(pattern string, h http.Handler) { s.internalMux.Handle(pattern, h) }

// InternalAddr is the internal listener's bound address after Open, "" when
// there is none.
func (s *Server) InternalAddr() string {
	if s.internalLn == nil {
		return ""
	}
	return s.internalLn.Addr().String()
}

// InternalHandler is the internal routes' handler chain, for tests.
func (s *Server) InternalHandler() http.Handler { return s.instrument(s.internalMux) }

// AddCheck adds a readiness check; /readyz fails while any check fails.
func (s *Server) AddCheck(name string, fn Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, namedCheck{name, fn})
}

// SetStats sets the function that adds service fields to /stats.
func (s *Server) SetStats(fn StatsFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = fn
}

// RegisterOnShutdown runs f when shutdown begins (e.g. to send WebSocket
// close frames: Server.Shutdown does not wait for hijacked connections).
func (s *Server) RegisterOnShutdown(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onShutdown = append(s.onShutdown, f)
}

// Draining reports whether shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Handler is the full handler chain, for tests that use httptest.
func (s *Server) Handler() http.Handler {
	return s.instrument(s.routes())
}

// Open listens on the configured address, so that a taken port fails at
// start-up rather than after the service claims to be up.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.Config.Addr, err)
	}
	s.ln = sockio.Listener(ln)
	s.srv = s.httpServer(s.Handler())
	if s.internalMux != nil {
		iln, err := net.Listen("tcp", s.internalAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen %s (internal): %w", s.internalAddr, err)
		}
		s.internalLn = sockio.Listener(iln)
		s.internalSrv = s.httpServer(s.InternalHandler())
	}
	s.mu.Lock()
	for _, f := range s.onShutdown {
		s.srv.RegisterOnShutdown(f)
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.Config.ReadHeaderTimeout,
		ReadTimeout:       s.Config.ReadTimeout,
		WriteTimeout:      s.Config.WriteTimeout,
		IdleTimeout:       s.Config.IdleTimeout,
		MaxHeaderBytes:    s.Config.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
}

// Addr is the bound address after Open.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves until ctx is cancelled, then fails readiness, waits
// ShutdownDelay, and drains in-flight requests within ShutdownTimeout.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Open(); err != nil {
			return err
		}
	}
	s.Logger.Info("listening", "addr", s.Addr(), "instance", s.Config.Instance)
	if s.Config.PprofAddr != "" {
		stop, err := servePprof(s.Config.PprofAddr, s.Logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Without a front, the net/http server serves the listener; with one,
	// the front does and net/http serves what it hands off.
	type server struct {
		Front
		ln net.Listener
	}
	servers := []server{{s.srv, s.ln}}
	if s.front != nil {
		s.handoff.addr = s.ln.Addr()
		servers = []server{{s.srv, s.handoff}, {s.front, s.ln}}
	}
	if s.internalSrv != nil {
		s.Logger.Info("internal routes listening", "addr", s.InternalAddr())
		servers = append(servers, server{s.internalSrv, s.internalLn})
	}
	errc := make(chan error, len(servers))
	for _, sv := range servers {
		go func() { errc <- sv.Serve(sv.ln) }()
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
		defer cancel()
		errs := make([]error, len(servers))
		var wg sync.WaitGroup
		for i, sv := range servers {
			wg.Go(func() { errs[i] = sv.Shutdown(sctx) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	select {
	case err := <-errc:
		// A server ended on its own: stop the others and report.
		_ = shutdown()
		for range len(servers) - 1 {
			<-errc
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.beginShutdown()
	err := shutdown()
	for range servers {
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.Logger.Info("stopped cleanly")
	return nil
}

// beginShutdown fails readiness and waits ShutdownDelay, so that load
// balancers stop sending before the listener closes.
func (s *Server) beginShutdown() {
	s.draining.Store(true)
	s.Logger.Info("shutting down: readiness now fails", "delay", s.Config.ShutdownDelay)
	if s.Config.ShutdownDelay > 0 {
		time.Sleep(s.Config.ShutdownDelay)
	}
}

// servePprof serves the profiling endpoints on their own listener, so they
// are never reachable through the service's public port.
func servePprof(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	logger.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close(); <-done }, nil
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	apierr.Respond(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness runs every check with a short deadline and returns failures by name.
func (s *Server) readiness(ctx context.Context) map[string]string {
	failed := map[string]string{}
	if s.draining.Load() {
		failed["server"] = "shutting down"
	}
	s.mu.Lock()
	checks := append([]namedCheck(nil), s.checks...)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, c := range checks {
		if err := c.fn(ctx); err != nil {
			failed[c.name] = err.Error()
		}
	}
	return failed
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if failed := s.readiness(r.Context()); len(failed) > 0 {
		apierr.Respond(w, http.StatusServiceUnavailable, map[string]any{
			"status": "not ready", "code": apierr.CodeUnavailable, "error": errNotReady.Error(), "failed": failed,
		})
		return
	}
	apierr.Respond(w, http.StatusOK, map[string]string{"status": "ready"})
}

// RequestStats is the request window every service reports in /stats.
func (s *Server) RequestStats(now time.Time) window.Summary {
	return s.window.Totals(now).Summary(s.window.Seconds())
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body := map[string]any{
		"service":        s.Name,
		"instance":       s.Config.Instance,
		"status":         "ONLINE",
		"ready":          !s.draining.Load(),
		"uptime_seconds": int64(now.Sub(s.started).Seconds()),
		"goroutines":     runtime.NumGoroutine(),
		"requests":       s.RequestStats(now),
		"timestamp":      now.UTC().Format(time.RFC3339Nano),
	}
	s.mu.Lock()
	fn := s.stats
	s.mu.Unlock()
	if fn != nil {
		for k, v := range fn(r.Context()) {
			body[k] = v
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	apierr.Respond(w, http.StatusOK, body)
}

// Main is a service's whole main; svc is its row of the topology (name,
// default port). load reads the service's configuration from env (after
// the platform's variables, in the same pass), so every variable is
// declared where it is read: -help prints them all with their
// defaults and meanings, -env-list as JSON. An invalid value exits 1 naming
// every one; otherwise Main logs the effective configuration (secrets
// masked), builds the server, cancels the context on SIGTERM or SIGINT and
// runs run: exit 0 on a clean shutdown, 1 otherwise.
func Main[C any](svc topology.Service, load func(env *envconfig.Reader, logger *slog.Logger) C, run func(ctx context.Context, srv *Server, cfg C) error) {
	name, defaultAddr := svc.Name, svc.Addr()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	envList := fs.Bool("env-list", false, "print the environment variables as JSON")
	describe := func() *envconfig.Reader {
		// An empty environment: the declarations with their defaults.
		r := envconfig.New(func(string) string { return "" })
		logLevel(r)
		LoadConfig(r, defaultAddr)
		load(r, slog.New(slog.DiscardHandler))
		return r
	}
	fs.Usage = func() { _ = describe().WriteHelp(os.Stderr, name) }
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected arguments %q (configuration is by environment variables: -help lists them)\n", name, fs.Args())
		os.Exit(2)
	}
	if *envList {
		if err := describe().WriteJSON(os.Stdout); err != nil {
			os.Exit(1)
		}
		return
	}

	env := envconfig.New(nil)
	logger := NewLogger(os.Stderr, name, logLevel(env))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := func() error {
		pcfg := LoadConfig(env, defaultAddr)
		cfg := load(env, logger)
		srv, err := newChecked(name, env, pcfg, logger)
		if err != nil {
			return err
		}
		return run(ctx, srv, cfg)
	}()
	if err != nil {
		logger.Error("exit", "err", err)
		stop()
		os.Exit(1)
	}
}

// NewFromEnv reads the platform's variables from env (LISTEN_ADDR defaults
// to defaultAddr), fails on any invalid variable env has seen (all of them
// listed), logs the effective configuration with secrets masked, and
// returns a server ready for routes. Main does this for a service; tests
// that build a service in-process call it after reading their own
// variables from env.
func NewFromEnv(name string, env *envconfig.Reader, logger *slog.Logger, defaultAddr string) (*Server, error) {
	return newChecked(name, env, LoadConfig(env, defaultAddr), logger)
}

func newChecked(name string, env *envconfig.Reader, cfg Config, logger *slog.Logger) (*Server, error) {
	if err := env.Err(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	logger.Info("starting", "config", env)
	// Process-wide: the upstream transports the service builds next dial
	// through it too.
	sockio.SetEnabled(cfg.RawSocketIO)
	return New(name, cfg, logger), nil
}

// Package upstream is the instance pool that the load balancer and the api
// gateway share: the instances of one upstream service (from a list of URLs
// or a DNS name re-resolved periodically, as a Kubernetes headless Service
// gives one A record per pod), per-instance state in atomics behind a single
// Available gate, selection policies, active health checks on /readyz and
// passive ejection on connect errors and timeouts, capped so that the
// last available instance is never ejected.
//
// The design follows caddy's modules/caddyhttp/reverseproxy: one Selector
// interface, one small type per policy, hosts whose hot-path state is read
// with a single atomic load.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Host states are bits of Host.state; zero means available. Keeping them in
// one word makes Available a single atomic load on the request path.
const (
	stateUnhealthy uint32 = 1 << iota // failed active health checks
	stateEjected                      // ejected by passive health
)

// Host is one instance of an upstream.
type Host struct {
	url  *url.URL // scheme://host:port, no path
	addr string   // host:port as dialled
	spec int      // index of the spec it came from (DNS updates replace per spec)

	inflight     atomic.Int64
	state        atomic.Uint32
	fails        atomic.Int32 // consecutive passive failures
	ejections    atomic.Int32 // consecutive ejections, for the back-off
	ejectedUntil atomic.Int64 // unix nanos
	checkFails   atomic.Int32 // consecutive failed active checks
	lastErr      atomic.Pointer[string]
}

func newHost(u *url.URL, spec int) *Host {
	return &Host{url: u, addr: u.Host, spec: spec}
}

// Available reports whether the host may receive requests: healthy and not ejected.
func (h *Host) Available() bool { return h.state.Load() == 0 }

// Healthy reports whether the last active health checks passed.
func (h *Host) Healthy() bool { return h.state.Load()&stateUnhealthy == 0 }

// Ejected reports whether passive health has taken the host out for a while.
func (h *Host) Ejected() bool { return h.state.Load()&stateEjected != 0 }

// URL is the host's base URL (scheme and host, no path). Do not modify it.
func (h *Host) URL() *url.URL { return h.url }

// Addr is the host:port the host is dialled at.
func (h *Host) Addr() string { return h.addr }

// Inflight is the number of requests the host is serving for us now.
func (h *Host) Inflight() int64 { return h.inflight.Load() }

// Begin counts a request sent to h (for least-requests selection); End
// counts it finished. A transport calls them around each attempt.
func (h *Host) Begin() { h.inflight.Add(1) }

// End counts a request to h finished.
func (h *Host) End() { h.inflight.Add(-1) }

// LastError is the last health failure seen, "" when none.
func (h *Host) LastError() string {
	if p := h.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (h *Host) setErr(s string) { h.lastErr.Store(&s) }

// HostStatus is a host's state for diagnostics (/stats/local).
type HostStatus struct {
	URL       string `json:"url"`
	Available bool   `json:"available"`
	Healthy   bool   `json:"healthy"`
	Ejected   bool   `json:"ejected"`
	Inflight  int64  `json:"inflight"`
	LastError string `json:"last_error,omitempty"`
}

// Options configure a Pool. Zero values take the defaults noted.
type Options struct {
	// Selector picks an instance per request (default LeastRequests, P2C).
	Selector Selector
	// HealthPath is the active health check path (e.g. "/readyz"); "" disables active checks.
	HealthPath string
	// HealthInterval is the time between active checks (default 2 s).
	HealthInterval time.Duration
	// HealthTimeout bounds one check (default 1 s).
	HealthTimeout time.Duration
	// HealthFails consecutive failed checks mark a host unhealthy (default 2);
	// one passing check marks it healthy again.
	HealthFails int
	// MaxFails consecutive timeouts eject a host
	// (default 3); a connect error ejects at once.
	MaxFails int
	// EjectFor is the first ejection's length (default 10 s); it doubles for
	// each consecutive ejection, up to 8 times as long.
	EjectFor time.Duration
	// MaxEjectPercent caps the share of hosts ejected at once (default 50);
	// at least one host may be ejected, and never the last available one.
	MaxEjectPercent int
	// ResolveEvery is how often dns+ specs are re-resolved (default 5 s).
	ResolveEvery time.Duration
	// LookupHost resolves a DNS name to addresses (default net.DefaultResolver).
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// Logger receives state changes (default: discard).
	Logger *slog.Logger
}

// OrDefault is v, or d when v is not positive: how every option of this
// package and its transports takes its default.
func OrDefault[T int | int64 | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

func (o *Options) defaults() {
	if o.Selector == nil {
		o.Selector = &LeastRequests{}
	}
	o.HealthInterval = OrDefault(o.HealthInterval, 2*time.Second)
	o.HealthTimeout = OrDefault(o.HealthTimeout, time.Second)
	o.HealthFails = OrDefault(o.HealthFails, 2)
	o.MaxFails = OrDefault(o.MaxFails, 3)
	o.EjectFor = OrDefault(o.EjectFor, 10*time.Second)
	if o.MaxEjectPercent <= 0 || o.MaxEjectPercent > 100 {
		o.MaxEjectPercent = 50
	}
	o.ResolveEvery = OrDefault(o.ResolveEvery, 5*time.Second)
	if o.LookupHost == nil {
		o.LookupHost = net.DefaultResolver.LookupHost
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// spec is one configured source of instances.
type spec struct {
	raw    string
	scheme string
	host   string // host name or address, no port
	port   string
	dns    bool // dns+scheme://name:port: one instance per A/AAAA record
}

// DNSPrefix marks a spec whose name is re-resolved, one instance per address.
const DNSPrefix = "dns+"

// ParseSpec validates one instance source: "http://host:port" (a single
// instance) or "dns+http://name:port" (one instance per address of name).
func parseSpec(raw string) (spec, error) {
	s := spec{raw: raw}
	rest := raw
	if strings.HasPrefix(rest, DNSPrefix) {
		s.dns = true
		rest = strings.TrimPrefix(rest, DNSPrefix)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return s, fmt.Errorf("%q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return s, fmt.Errorf("%q: scheme must be http or https (optionally dns+http)", raw)
	}
	if u.Hostname() == "" {
		return s, fmt.Errorf("%q: no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return s, fmt.Errorf("%q: want a base URL with no path, query or credentials", raw)
	}
	s.scheme, s.host, s.port = u.Scheme, u.Hostname(), u.Port()
	if s.port == "" {
		s.port = "80"
		if s.scheme == "https" {
			s.port = "443"
		}
	}
	if n, err := strconv.Atoi(s.port); err != nil || n < 1 || n > 65535 {
		return s, fmt.Errorf("%q: bad port", raw)
	}
	return s, nil
}

// ValidateSpecs checks instance sources without building a pool, for
// configuration errors reported at start-up.
func ValidateSpecs(specs []string) error {
	var errs []error
	for _, raw := range specs {
		if _, err := parseSpec(raw); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s spec) hostURL(host string) *url.URL {
	return &url.URL{Scheme: s.scheme, Host: net.JoinHostPort(host, s.port)}
}

// Pool is the set of instances of one upstream. It is safe for concurrent use.
type Pool struct {
	name  string
	opts  Options
	specs []spec
	hosts atomic.Pointer[[]*Host]
	// fallback spreads requests when no host is available ("panic mode":
	// better to try a host that may have recovered than to fail outright).
	fallback atomic.Uint64

	mu     sync.Mutex // serialises ejection decisions and host-set changes
	client *http.Client
}

// New builds a pool from instance sources. DNS sources are resolved once
// here (a failure is logged, not fatal: the name may not exist yet) and then
// every ResolveEvery by Run.
func New(name string, specs []string, opts Options) (*Pool, error) {
	opts.defaults()
	p := &Pool{name: name, opts: opts}
	for _, raw := range specs {
		s, err := parseSpec(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		p.specs = append(p.specs, s)
	}
	var hosts []*Host
	for i, s := range p.specs {
		if !s.dns {
			hosts = append(hosts, newHost(s.hostURL(s.host), i))
		}
	}
	p.hosts.Store(&hosts)
	if p.hasDNS() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p.resolve(ctx)
		cancel()
	}
	p.client = &http.Client{
		Timeout: opts.HealthTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: opts.HealthTimeout}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p, nil
}

// Name is the upstream's name.
func (p *Pool) Name() string { return p.name }

// Logger is the pool's logger, for the transports that use it.
func (p *Pool) Logger() *slog.Logger { return p.opts.Logger }

// Hosts is the current instance set; do not modify the slice.
func (p *Pool) Hosts() []*Host { return *p.hosts.Load() }

// Status describes every host, for diagnostics.
func (p *Pool) Status() []HostStatus {
	hosts := p.Hosts()
	out := make([]HostStatus, len(hosts))
	for i, h := range hosts {
		out[i] = HostStatus{URL: h.url.String(), Available: h.Available(), Healthy: h.Healthy(),
			Ejected: h.Ejected(), Inflight: h.Inflight(), LastError: h.LastError()}
	}
	return out
}

// Select picks an instance for r. When no instance is available it still
// returns one (round robin over all), since a request to a host that may
// have recovered beats a certain failure; it returns nil only when the pool
// has no instance at all.
func (p *Pool) Select(r *http.Request) *Host {
	hosts := *p.hosts.Load()
	if h := p.opts.Selector.Select(hosts, r); h != nil {
		return h
	}
	if len(hosts) == 0 {
		return nil
	}
	return hosts[p.fallback.Add(1)%uint64(len(hosts))]
}

// SelectOther picks an available instance other than not, or nil; it is for
// the one retry of a request that could not connect.
func (p *Pool) SelectOther(r *http.Request, not *Host) *Host {
	hosts := *p.hosts.Load()
	others := make([]*Host, 0, len(hosts))
	for _, h := range hosts {
		if h != not {
			others = append(others, h)
		}
	}
	return p.opts.Selector.Select(others, r)
}

// Succeed records a good answer from h: its passive failure count restarts.
func (p *Pool) Succeed(h *Host) {
	// Loads first: stores on every request would bounce the cache line
	// between cores for nothing.
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
	if h.ejections.Load() != 0 && !h.Ejected() {
		h.ejections.Store(0)
	}
}

// Fail records a failure of h: a connect error (connect true) ejects it at
// once, MaxFails consecutive timeouts eject it. Ejection is
// capped: never the last available host, never more than MaxEjectPercent.
func (p *Pool) Fail(h *Host, connect bool, reason string) {
	n := h.fails.Add(1)
	if !connect && int(n) < p.opts.MaxFails {
		return
	}
	p.eject(h, reason, time.Now())
}

func (p *Pool) eject(h *Host, reason string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h.Ejected() {
		return
	}
	hosts := p.Hosts()
	others, ejected := 0, 0
	for _, o := range hosts {
		if o != h && o.Available() {
			others++
		}
		if o.Ejected() {
			ejected++
		}
	}
	if others == 0 {
		// The last available instance stays: ejecting it would turn a
		// partial failure into a total one (envoy#3263).
		p.opts.Logger.Debug("not ejecting the last available instance", "upstream", p.name, "instance", h.addr, "reason", reason)
		return
	}
	if ejected >= max(1, len(hosts)*p.opts.MaxEjectPercent/100) {
		return
	}
	k := h.ejections.Add(1)
	d := p.opts.EjectFor << min(k-1, 3)
	h.ejectedUntil.Store(now.Add(d).UnixNano())
	h.fails.Store(0)
	h.setErr(reason)
	h.state.Or(stateEjected)
	p.opts.Logger.Warn("instance ejected", "upstream", p.name, "instance", h.addr, "for", d, "reason", reason)
}

// readmit returns ejected hosts whose time is up.
func (p *Pool) readmit(now time.Time) {
	for _, h := range p.Hosts() {
		if h.Ejected() && now.UnixNano() >= h.ejectedUntil.Load() {
			h.state.And(^stateEjected)
			p.opts.Logger.Info("instance re-admitted", "upstream", p.name, "instance", h.addr)
		}
	}
}

func (p *Pool) hasDNS() bool {
	return slices.ContainsFunc(p.specs, func(s spec) bool { return s.dns })
}

// Run keeps the pool current until ctx ends: readmission of ejected hosts,
// active health checks, and DNS re-resolution.
func (p *Pool) Run(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	nextCheck, nextResolve := time.Now(), time.Now().Add(p.opts.ResolveEvery)
	for {
		select {
		case <-ctx.Done():
			p.client.CloseIdleConnections()
			return
		case now := <-tick.C:
			p.readmit(now)
			if p.hasDNS() && !now.Before(nextResolve) {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				p.resolve(rctx)
				cancel()
				nextResolve = now.Add(p.opts.ResolveEvery)
			}
			if p.opts.HealthPath != "" && !now.Before(nextCheck) {
				p.CheckNow(ctx)
				nextCheck = time.Now().Add(p.opts.HealthInterval)
			}
		}
	}
}

// CheckNow runs one round of active health checks, every host in parallel.
func (p *Pool) CheckNow(ctx context.Context) {
	if p.opts.HealthPath == "" {
		return
	}
	var wg sync.WaitGroup
	for _, h := range p.Hosts() {
		wg.Go(func() { p.check(ctx, h) })
	}
	wg.Wait()
}

func (p *Pool) check(ctx context.Context, h *Host) {
	err := p.probe(ctx, h)
	if err == nil {
		h.checkFails.Store(0)
		if !h.Healthy() {
			p.opts.Logger.Info("instance healthy", "upstream", p.name, "instance", h.addr)
		}
		// A passing check also ends an ejection: the instance is back.
		if old := h.state.And(^(stateUnhealthy | stateEjected)); old&stateEjected != 0 {
			p.opts.Logger.Info("instance re-admitted", "upstream", p.name, "instance", h.addr)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	h.setErr(err.Error())
	if int(h.checkFails.Add(1)) >= p.opts.HealthFails && h.Healthy() {
		h.state.Or(stateUnhealthy)
		p.opts.Logger.Warn("instance unhealthy", "upstream", p.name, "instance", h.addr, "err", err)
	}
}

func (p *Pool) probe(ctx context.Context, h *Host) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url.String()+p.opts.HealthPath, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", p.opts.HealthPath, resp.Status)
	}
	return nil
}

// resolve re-resolves the DNS specs. Hosts whose address is still present
// keep their state; a failed lookup keeps that spec's previous hosts.
func (p *Pool) resolve(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.Hosts()
	byAddr := make(map[string]*Host, len(old))
	for _, h := range old {
		byAddr[h.addr] = h
	}
	var next []*Host
	changed := false
	for i, s := range p.specs {
		if !s.dns {
			for _, h := range old {
				if h.spec == i {
					next = append(next, h)
				}
			}
			continue
		}
		addrs, err := p.opts.LookupHost(ctx, s.host)
		if err != nil {
			p.opts.Logger.Warn("resolve failed; keeping the previous instances", "upstream", p.name, "name", s.host, "err", err)
			for _, h := range old {
				if h.spec == i {
					next = append(next, h)
				}
			}
			continue
		}
		slices.Sort(addrs)
		for _, a := range slices.Compact(addrs) {
			u := s.hostURL(a)
			if h, ok := byAddr[u.Host]; ok && h.spec == i {
				next = append(next, h)
				continue
			}
			next = append(next, newHost(u, i))
			changed = true
		}
	}
	if len(next) != len(old) {
		changed = true
	}
	if changed {
		p.opts.Logger.Info("instances changed", "upstream", p.name, "count", len(next))
	}
	p.hosts.Store(&next)
}

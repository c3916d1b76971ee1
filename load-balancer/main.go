// Command load-balancer is Titanium's public entry point: it proxies / to
// dashboard-ui and /api/*, /blog/ to api-gateway, balancing across every
// instance with health checks; it accounts real API traffic in a 10 s
// window, answers GET /stats with a parallel fan-out to every service
// instance (merged with its peer replicas), and serves the dashboard's
// WebSocket heartbeat.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"titanium/platform/apierr"
	"titanium/platform/clientip"
	"titanium/platform/envconfig"
	"titanium/platform/service"
	"titanium/platform/topology"
	"titanium/platform/upstream"
	"titanium/platform/upstream/fastproxy"
)

var self = topology.Get("load-balancer")

func main() { service.Main(self, loadConfig, run) }

// config is the load balancer's own configuration (docs/load-balancer.md).
type config struct {
	uiSpecs, apiSpecs []string
	targets           []statsTarget
	peers             []string
	balance           string
	healthPath        string
	healthInterval    time.Duration
	ejectFor          time.Duration
	resolveEvery      time.Duration
	headerTimeout     time.Duration
	dialTimeout       time.Duration
	idlePerHost       int
	maxBody           int
	maxResponse       int
	trusted           clientip.Resolver
	trafficStats      bool
	fastPath          bool
	statsCache        time.Duration
	ws                wsConfig
}

type statsTarget struct{ service, spec string }

// none is how an empty list is spelled (an empty variable means "default").
const none = "none"

func loadConfig(env *envconfig.Reader, _ *slog.Logger) config {
	const forms = "comma-separated URLs or dns+http://name:port"
	c := config{
		uiSpecs:        env.List("LB_UI_UPSTREAMS", self.LocalDefault("LB_UI_UPSTREAMS"), "dashboard-ui instances: "+forms),
		apiSpecs:       env.List("LB_API_UPSTREAMS", self.LocalDefault("LB_API_UPSTREAMS"), "api-gateway instances (any HTTP backend works): "+forms),
		peers:          env.List("LB_PEERS", self.LocalDefault("LB_PEERS"), "the other load-balancer replicas, for the merged /stats: "+forms+"; none for no peers"),
		balance:        env.String("LB_BALANCE", "least_requests", "how an instance is picked: least_requests (power of two choices) or round_robin"),
		healthPath:     env.String("LB_HEALTH_PATH", "/readyz", "active health check path; none disables active checks"),
		healthInterval: env.Duration("LB_HEALTH_INTERVAL", 2*time.Second, "time between active checks"),
		ejectFor:       env.Duration("LB_EJECT_FOR", 10*time.Second, "length of an instance's first ejection"),
		resolveEvery:   env.Duration("LB_DNS_REFRESH", 5*time.Second, "re-resolution period of dns+ names"),
		headerTimeout:  env.Duration("LB_RESPONSE_HEADER_TIMEOUT", 5*time.Second, "wait for an upstream's response headers"),
		dialTimeout:    env.Duration("LB_DIAL_TIMEOUT", time.Second, "connect timeout"),
		idlePerHost:    env.Int("LB_MAX_IDLE_CONNS_PER_HOST", 512, 2, 10000, "keep-alive connections per instance"),
		// The largest body a service accepts is 1 MiB (a token to verify);
		// the margin keeps its own 413 the answer at that size.
		maxBody:      env.Int("LB_MAX_BODY_BYTES", 1<<20+64<<10, 1<<10, 64<<20, "largest request body in bytes; a larger one gets a JSON 413"),
		maxResponse:  env.Int("LB_MAX_RESPONSE_BYTES", 16<<20, 64<<10, 256<<20, "largest upstream answer in bytes on the fasthttp front (502 over it)"),
		trafficStats: env.Bool("LB_TRAFFIC_STATS", true, "account API traffic for /stats"),
		fastPath:     env.Bool("LB_FAST_PATH", true, "serve the proxied routes on the fasthttp front; false serves everything on net/http"),
		statsCache:   env.Duration("LB_STATS_CACHE", 250*time.Millisecond, "how long a /stats answer is reused"),
	}
	for _, key := range []string{"LB_UI_UPSTREAMS", "LB_API_UPSTREAMS"} {
		specs := c.uiSpecs
		if key == "LB_API_UPSTREAMS" {
			specs = c.apiSpecs
		}
		env.Check(len(specs) > 0, key, "want at least one URL")
		if err := upstream.ValidateSpecs(specs); err != nil {
			env.Check(false, key, err.Error())
		}
	}
	if len(c.peers) == 1 && c.peers[0] == none {
		c.peers = nil
	}
	if err := upstream.ValidateSpecs(c.peers); err != nil {
		env.Check(false, "LB_PEERS", err.Error())
	}
	for _, item := range env.List("LB_STATS_TARGETS", self.LocalDefault("LB_STATS_TARGETS"), "the instances /stats asks: comma-separated service=URL items (a service repeated per instance; URL may be dns+http://); none for no targets") {
		if item == none {
			continue
		}
		name, spec, ok := strings.Cut(item, "=")
		name, spec = strings.TrimSpace(name), strings.TrimSpace(spec)
		if !ok || name == "" {
			env.Check(false, "LB_STATS_TARGETS", "want service=URL items, got "+item)
			continue
		}
		if err := upstream.ValidateSpecs([]string{spec}); err != nil {
			env.Check(false, "LB_STATS_TARGETS", err.Error())
			continue
		}
		c.targets = append(c.targets, statsTarget{name, spec})
	}
	// None by default: the balancer is the edge and its peer the client.
	c.trusted = clientip.Load(env, "LB_TRUSTED_PROXIES", none, "TLS-terminating proxies in front of the balancer (CIDR prefixes or addresses), whose X-Forwarded-For is believed; none by default")
	_, ok := upstream.NewSelector(c.balance)
	env.Check(ok, "LB_BALANCE", "want round_robin or least_requests")
	if c.healthPath == none {
		c.healthPath = ""
	}
	env.Check(c.healthPath == "" || strings.HasPrefix(c.healthPath, "/"), "LB_HEALTH_PATH", "want a path such as /readyz, or none")
	env.Check(c.headerTimeout > 0, "LB_RESPONSE_HEADER_TIMEOUT", "want > 0")

	c.ws = wsConfig{
		allowed:          map[string]bool{},
		pongWait:         env.Duration("WS_PONG_WAIT", 60*time.Second, "drop a heartbeat peer silent this long"),
		writeWait:        env.Duration("WS_WRITE_WAIT", 10*time.Second, "deadline of each heartbeat write"),
		readLimit:        int64(env.Int("WS_READ_LIMIT", 512, 16, 1<<20, "largest heartbeat message accepted, bytes")),
		handshakeTimeout: env.Duration("WS_HANDSHAKE_TIMEOUT", 5*time.Second, "WebSocket upgrade handshake deadline"),
		maxConns:         env.Int("WS_MAX_CONNS", 5000, 1, 1_000_000, "heartbeat sockets open at once; over it, JSON 503 before the upgrade"),
		maxPerAddr:       env.Int("WS_MAX_CONNS_PER_ADDR", 50, 1, 1_000_000, "heartbeat sockets per client address; over it, JSON 429 before the upgrade"),
	}
	c.ws.pingPeriod = env.Duration("WS_PING_PERIOD", c.ws.pongWait*9/10, "heartbeat ping interval; default 9/10 of WS_PONG_WAIT")
	env.Check(c.ws.pongWait > 0, "WS_PONG_WAIT", "want > 0")
	env.Check(c.ws.pingPeriod > 0 && c.ws.pingPeriod < c.ws.pongWait, "WS_PING_PERIOD", "want > 0 and shorter than WS_PONG_WAIT")
	for _, o := range env.List("WS_ALLOWED_ORIGINS", fmt.Sprintf("http://localhost:%d,http://127.0.0.1:%d", self.Port, self.Port), "browser origins allowed to open the heartbeat WebSocket, besides same-origin") {
		c.ws.allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return c
}

func run(ctx context.Context, srv *service.Server, cfg config) error {
	logger := srv.Logger
	lb, err := build(srv, cfg, logger)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range lb.pools {
		wg.Go(func() { p.Run(pctx) })
	}
	srv.RegisterOnShutdown(lb.hub.shutdown)
	err = srv.Serve(ctx)
	lb.hub.shutdown()
	lb.hub.wait(2 * time.Second)
	cancel()
	wg.Wait()
	return err
}

type balancer struct {
	pools []*upstream.Pool
	hub   *hub
	agg   *aggregator
}

// build makes the pools and mounts the routes.
func build(srv *service.Server, cfg config, logger *slog.Logger) (*balancer, error) {
	lb := &balancer{}
	// proxyTo makes a pool and both of its forwarders: net/http's and the
	// front's.
	proxyTo := func(name string, specs []string) (http.Handler, *fastproxy.Forwarder, error) {
		sel, _ := upstream.NewSelector(cfg.balance)
		pool, err := upstream.New(name, specs, upstream.Options{
			Selector: sel, HealthPath: cfg.healthPath, HealthInterval: cfg.healthInterval,
			EjectFor: cfg.ejectFor, ResolveEvery: cfg.resolveEvery, Logger: logger,
		})
		if err != nil {
			return nil, nil, err
		}
		lb.pools = append(lb.pools, pool)
		front := fastproxy.New(pool, fastproxy.Options{
			Timeout:             cfg.headerTimeout,
			DialTimeout:         cfg.dialTimeout,
			MaxConnsPerHost:     cfg.idlePerHost,
			MaxResponseBodySize: cfg.maxResponse,
			Retry:               true,
			Trusted:             cfg.trusted,
			Logger:              logger,
		})
		return upstream.NewProxy(pool, upstream.ProxyOptions{
			ResponseHeaderTimeout: cfg.headerTimeout,
			ExchangeTimeout:       cfg.headerTimeout,
			DialTimeout:           cfg.dialTimeout,
			MaxIdleConnsPerHost:   cfg.idlePerHost,
			Forward:               upstream.EdgeBehind(cfg.trusted),
			Retry:                 true,
			Logger:                logger,
		}), front, nil
	}
	ui, uiFront, err := proxyTo("dashboard-ui", cfg.uiSpecs)
	if err != nil {
		return nil, err
	}
	api, apiFront, err := proxyTo("api-gateway", cfg.apiSpecs)
	if err != nil {
		return nil, err
	}

	// Stats targets: one pool per service (no health checks: the fan-out is
	// the check), in the order they are first listed.
	var services []*upstream.Pool
	specsBy := map[string][]string{}
	var order []string
	for _, t := range cfg.targets {
		if _, ok := specsBy[t.service]; !ok {
			order = append(order, t.service)
		}
		specsBy[t.service] = append(specsBy[t.service], t.spec)
	}
	for _, name := range order {
		p, err := upstream.New(name, specsBy[name], upstream.Options{ResolveEvery: cfg.resolveEvery, Logger: logger})
		if err != nil {
			return nil, err
		}
		services = append(services, p)
		lb.pools = append(lb.pools, p)
	}
	peers, err := upstream.New("load-balancer", cfg.peers, upstream.Options{ResolveEvery: cfg.resolveEvery, Logger: logger})
	if err != nil {
		return nil, err
	}
	lb.pools = append(lb.pools, peers)

	t := newTraffic()
	lb.hub = newHub(cfg.ws, t, logger)
	lb.agg = newAggregator(srv.Config.Instance, services, peers, t, cfg.statsCache, logger)

	counted := api
	if cfg.trafficStats {
		counted = t.middleware(api)
	}
	if cfg.fastPath {
		var ft *traffic
		if cfg.trafficStats {
			ft = t
		}
		srv.SetFront(newFront(srv, uiFront, apiFront, ft, cfg.maxBody, logger))
	}
	limit := func(h http.Handler) http.Handler { return limitBody(cfg.maxBody, h) }
	srv.Handle("/", limit(ui))
	srv.Handle("/api/", limit(counted))
	srv.Handle("/blog/", limit(api))
	srv.Handle("/blog", limit(api))
	srv.Handle("GET /api/ws-heartbeat", lb.hub)
	srv.HandleFunc("GET /stats/local", lb.agg.serveLocal)
	// /stats is the whole system's here, for every method (the aggregator
	// answers 405 to all but GET and HEAD); it replaces the platform's
	// per-process /stats.
	srv.Handle("/stats", lb.agg)
	return lb, nil
}

// limitBody refuses a request whose declared body is over maxBytes with a JSON
// 413 before reading any of it, and cuts a chunked one at maxBytes (the proxy
// then answers 413), as the front does.
func limitBody(maxBytes int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > int64(maxBytes) {
			w.Header().Set("Connection", "close")
			apierr.WriteCode(w, apierr.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", maxBytes))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, int64(maxBytes))
		}
		next.ServeHTTP(w, r)
	})
}

// Command api-gateway routes the public API to the services: /api/auth/* to
// auth-service, /api/users* to user-service, /api/posts* and /blog/ to
// blog-service. Each service may have several instances (a pool with
// balancing and health checks); a dead or hung service gives a fast JSON
// 502/504, never a hang. /internal/* is never routed.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"titanium/platform/apierr"
	"titanium/platform/clientip"
	"titanium/platform/envconfig"
	"titanium/platform/service"
	"titanium/platform/topology"
	"titanium/platform/upstream"
)

var self = topology.Get("api-gateway")

func main() { service.Main(self, loadConfig, run) }

// config is the gateway's own configuration (README: docs/api-gateway.md).
type config struct {
	routes         []route
	trusted        clientip.Resolver
	balance        string
	healthInterval time.Duration
	ejectFor       time.Duration
	headerTimeout  time.Duration
	dialTimeout    time.Duration
	idlePerHost    int
}

// route maps ServeMux patterns to one upstream service.
type route struct {
	service  string
	env      string
	specs    []string
	patterns []string
}

func loadConfig(env *envconfig.Reader, _ *slog.Logger) config {
	c := config{
		routes: []route{
			{service: "auth-service", env: "AUTH_SERVICE_URL", patterns: []string{"/api/auth/"}},
			{service: "user-service", env: "USER_SERVICE_URL", patterns: []string{"/api/users", "/api/users/"}},
			{service: "blog-service", env: "BLOG_SERVICE_URL", patterns: []string{"/api/posts", "/api/posts/", "/blog/"}},
		},
	}
	for i := range c.routes {
		r := &c.routes[i]
		r.specs = env.List(r.env, self.LocalDefault(r.env), r.service+" instances: comma-separated URLs or dns+http://name:port")
		env.Check(len(r.specs) > 0, r.env, "want at least one URL")
		if err := upstream.ValidateSpecs(r.specs); err != nil {
			env.Check(false, r.env, err.Error())
		}
	}
	c.trusted = clientip.LoadTrusted(env)
	c.balance = env.String("GATEWAY_BALANCE", "least_requests", "how an instance is picked: least_requests or round_robin")
	c.healthInterval = env.Duration("GATEWAY_HEALTH_INTERVAL", 2*time.Second, "period of the active /readyz checks")
	c.ejectFor = env.Duration("GATEWAY_EJECT_FOR", 10*time.Second, "length of an instance's first ejection")
	c.headerTimeout = env.Duration("GATEWAY_RESPONSE_HEADER_TIMEOUT", 2*time.Second, "wait for an upstream's response headers (then 504)")
	c.dialTimeout = env.Duration("GATEWAY_DIAL_TIMEOUT", time.Second, "connect timeout")
	c.idlePerHost = env.Int("GATEWAY_MAX_IDLE_CONNS_PER_HOST", 256, 2, 10000, "keep-alive connections per instance")
	_, ok := upstream.NewSelector(c.balance)
	env.Check(ok, "GATEWAY_BALANCE", "want round_robin or least_requests")
	env.Check(c.headerTimeout > 0, "GATEWAY_RESPONSE_HEADER_TIMEOUT", "want > 0")
	return c
}

func run(ctx context.Context, srv *service.Server, cfg config) error {
	pools, err := mount(srv, cfg, srv.Logger)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Go(func() { p.Run(pctx) })
	}
	srv.SetStats(func(context.Context) map[string]any {
		up := map[string]any{}
		for _, p := range pools {
			up[p.Name()] = p.Status()
		}
		return map[string]any{"upstreams": up}
	})
	err = srv.Serve(ctx)
	cancel()
	wg.Wait()
	return err
}

// mount registers the routes and returns the pools to keep running.
func mount(srv *service.Server, cfg config, logger *slog.Logger) ([]*upstream.Pool, error) {
	var pools []*upstream.Pool
	for _, rt := range cfg.routes {
		sel, _ := upstream.NewSelector(cfg.balance)
		pool, err := upstream.New(rt.service, rt.specs, upstream.Options{
			Selector:       sel,
			HealthPath:     "/readyz",
			HealthInterval: cfg.healthInterval,
			EjectFor:       cfg.ejectFor,
			Logger:         logger,
		})
		if err != nil {
			return nil, err
		}
		pools = append(pools, pool)
		h := upstream.NewProxy(pool, upstream.ProxyOptions{
			ResponseHeaderTimeout: cfg.headerTimeout,
			DialTimeout:           cfg.dialTimeout,
			MaxIdleConnsPerHost:   cfg.idlePerHost,
			Forward:               upstream.TrustedForwarding(cfg.trusted.IsTrusted),
			Retry:                 true,
			Logger:                logger,
		})
		for _, pat := range rt.patterns {
			srv.Handle(pat, h)
		}
	}
	srv.HandleFunc("GET /api/health", func(w http.ResponseWriter, _ *http.Request) {
		apierr.Respond(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Everything else, /internal/* included, is not ours to route.
	notFound := func(w http.ResponseWriter, _ *http.Request) {
		apierr.WriteCode(w, apierr.CodeNotFound, "no such route")
	}
	srv.HandleFunc("/api/", notFound)
	srv.HandleFunc("/", notFound)
	return pools, nil
}

// Command auth-service turns a username and password into a signed access
// token (checking them with user-service) and verifies tokens for clients.
// Login is throttled per client address and per account.
package main

import (
	"context"
	"log/slog"
	"sync"

	"titanium/auth-service/httpapi"
	"titanium/auth-service/userclient"
	"titanium/platform/clientip"
	"titanium/platform/envconfig"
	"titanium/platform/jwtauth"
	"titanium/platform/service"
	"titanium/platform/throttle"
	"titanium/platform/topology"
)

var self = topology.Get("auth-service")

func main() { service.Main(self, loadConfig, run) }

type config struct {
	users   *userclient.Client
	jwt     jwtauth.Config
	trusted clientip.Resolver
	// Login throttles: sustained attempts per minute and burst.
	ipPerMinute, ipBurst           int
	accountPerMinute, accountBurst int
	maxTrackedKeys                 int
}

func loadConfig(env *envconfig.Reader, logger *slog.Logger) config {
	// user-service's internal listener: /internal/authenticate is there.
	urls := env.List("USER_SERVICE_URL", self.LocalDefault("USER_SERVICE_URL"),
		"user-service's internal listener (INTERNAL_ADDR): comma-separated base URLs, or dns+http://name:port for every address a name resolves to")
	users, err := userclient.New(urls, logger)
	if err != nil {
		env.Check(false, "USER_SERVICE_URL", err.Error())
	}
	c := config{
		users: users,
		jwt:   jwtauth.LoadConfig(env, logger),
		// Per address: every attempt counts. Generous enough for many users
		// behind one NAT; the per-account limit is what stops guessing.
		ipPerMinute: env.Int("LOGIN_IP_PER_MINUTE", 300, 1, 1_000_000, "login attempts per client address per minute"),
		ipBurst:     env.Int("LOGIN_IP_BURST", 50, 1, 1_000_000, "login attempts per client address in a burst"),
		// Per account: failed attempts only (successes are refunded).
		accountPerMinute: env.Int("LOGIN_ACCOUNT_PER_MINUTE", 12, 1, 1_000_000, "failed logins per account and client address per minute"),
		accountBurst:     env.Int("LOGIN_ACCOUNT_BURST", 10, 1, 1_000_000, "failed logins per account and client address in a burst"),
		maxTrackedKeys:   env.Int("LOGIN_THROTTLE_MAX_KEYS", 100_000, 1_000, 10_000_000, "most addresses (and accounts) the login throttles track"),
		trusted:          clientip.LoadTrusted(env),
	}
	return c
}

func run(ctx context.Context, srv *service.Server, cfg config) error {
	users, logger := cfg.users, srv.Logger
	// The pool's health checks and DNS re-resolution run until the server
	// has stopped.
	poolCtx, stopPool := context.WithCancel(ctx)
	var pool sync.WaitGroup
	pool.Go(func() { users.Run(poolCtx) })
	defer func() { stopPool(); pool.Wait() }()
	limits := httpapi.Limits{
		PerIP:      throttle.New(cfg.ipPerMinute, cfg.ipBurst, cfg.maxTrackedKeys),
		PerAccount: throttle.New(cfg.accountPerMinute, cfg.accountBurst, cfg.maxTrackedKeys),
	}
	h := httpapi.New(users, cfg.jwt, limits, cfg.trusted, logger)
	h.Routes(srv)
	// No readiness check on user-service: verify works without it, and
	// failing readiness would take verification down with login.
	srv.SetStats(func(ctx context.Context) map[string]any {
		stats := h.Stats()
		instances := users.Reachability(ctx)
		status := "OFFLINE"
		for _, in := range instances {
			if in.Status == "ONLINE" {
				status = "ONLINE"
			}
		}
		stats["user_service"] = map[string]any{"status": status, "instances": instances}
		return stats
	})
	return srv.Serve(ctx)
}

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
)

func main() { service.Main("auth-service", run) }

type config struct {
	userServices []string
	jwt          jwtauth.Config
	trusted      clientip.Resolver
	// Login throttles: sustained attempts per minute and burst.
	ipPerMinute, ipBurst           int
	accountPerMinute, accountBurst int
	maxTrackedKeys                 int
}

func loadConfig(env *envconfig.Reader, logger *slog.Logger) config {
	c := config{
		// user-service's internal listener: /internal/authenticate is there.
		userServices: env.List("USER_SERVICE_URL", "http://127.0.0.1:8101"),
		jwt:          jwtauth.LoadConfig(env, logger),
		// Per address: every attempt counts. Generous enough for many users
		// behind one NAT; the per-account limit is what stops guessing.
		ipPerMinute: env.Int("LOGIN_IP_PER_MINUTE", 300, 1, 1_000_000),
		ipBurst:     env.Int("LOGIN_IP_BURST", 50, 1, 1_000_000),
		// Per account: failed attempts only (successes are refunded).
		accountPerMinute: env.Int("LOGIN_ACCOUNT_PER_MINUTE", 12, 1, 1_000_000),
		accountBurst:     env.Int("LOGIN_ACCOUNT_BURST", 10, 1, 1_000_000),
		maxTrackedKeys:   env.Int("LOGIN_THROTTLE_MAX_KEYS", 100_000, 1_000, 10_000_000),
	}
	env.Check(len(c.userServices) > 0, "USER_SERVICE_URL", "needs at least one URL")
	trusted, err := clientip.ParseTrusted(env.List("TRUSTED_PROXIES", clientip.DefaultTrusted))
	env.Check(err == nil, "TRUSTED_PROXIES", "want comma-separated CIDR prefixes or addresses")
	c.trusted = trusted
	return c
}

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	cfg := loadConfig(env, logger)
	users, userErr := userclient.New(cfg.userServices, logger)
	if userErr != nil {
		env.Check(false, "USER_SERVICE_URL", userErr.Error())
	}
	srv, err := service.Start("auth-service", env, logger, ":8002")
	if err != nil {
		return err
	}
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

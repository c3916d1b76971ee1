// Command user-service keeps Titanium's users: registration, lookup, a
// paginated list, self-service changes and the internal password check that
// auth-service calls. SQLite (users.db) is the source of truth; Redis is an
// optional cache in front of it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"titanium/platform/clientip"
	"titanium/platform/envconfig"
	"titanium/platform/jwtauth"
	"titanium/platform/service"
	"titanium/platform/sqlitedb"
	"titanium/platform/throttle"
	"titanium/platform/topology"
	"titanium/user-service/cache"
	"titanium/user-service/httpapi"
	"titanium/user-service/password"
	"titanium/user-service/store"
	"titanium/user-service/users"
)

var self = topology.Get("user-service")

func main() { service.Main(self, loadConfig, run) }

type config struct {
	db         sqlitedb.Config
	cache      cache.Config
	bcryptCost int
	jwt        jwtauth.Config
	// Registrations per client address: sustained per minute, and burst.
	registerPerMinute, registerBurst int
	trusted                          clientip.Resolver
	// internalAddr is where /internal/* listens, apart from the public
	// port that monitoring scrapes.
	internalAddr string
}

func loadConfig(env *envconfig.Reader, logger *slog.Logger) config {
	c := config{
		// SQLITE_SYNCHRONOUS=FULL where a power loss must not lose a registration.
		db: sqlitedb.LoadConfig(env, self.Data.Var, "data/"+self.Data.File),
		cache: cache.Config{
			Addr:     env.String("REDIS_ADDR", self.LocalDefault("REDIS_ADDR"), "Redis host:port; nothing there means cache OFFLINE, the service still answers"),
			Password: env.Secret("REDIS_PASSWORD", "", "Redis AUTH password; empty: none"),
			TTL:      env.Duration("CACHE_TTL", 60*time.Second, "cache entry lifetime (at least 1s): bounds staleness if an invalidation is lost"),
		},
		// OWASP's floor for bcrypt is 10; 16 is ~4 s per hash, past any sane login.
		bcryptCost: env.Int("BCRYPT_COST", 10, password.MinCost, 16, "bcrypt cost of new password hashes"),
		jwt:        jwtauth.LoadConfig(env, logger),
		// A person signs up once; a school behind one NAT address may sign
		// up a class at a time.
		registerPerMinute: env.Int("REGISTER_IP_PER_MINUTE", 30, 1, 1_000_000, "registrations per client address per minute"),
		registerBurst:     env.Int("REGISTER_IP_BURST", 20, 1, 1_000_000, "registrations per client address in a burst"),
		trusted:           clientip.LoadTrusted(env),
		internalAddr:      env.String(self.InternalVar, fmt.Sprintf(":%d", self.InternalPort), "the internal listener: /internal/authenticate (auth-service's), /readyz and /healthz only"),
	}
	env.Check(c.cache.TTL >= time.Second, "CACHE_TTL", "must be at least 1s")
	return c
}

func run(ctx context.Context, srv *service.Server, cfg config) error {
	logger := srv.Logger
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(openCtx, cfg.db.Path, cfg.db.Sync)
	cancel()
	if err != nil {
		return fmt.Errorf("open users database: %w", err)
	}
	defer st.Close()

	cache.RouteLibraryLogs(logger)
	c := cache.New(cfg.cache, logger)
	defer c.Close()

	hasher, err := password.New(cfg.bcryptCost, 0, password.DefaultMaxWait)
	if err != nil {
		return err
	}
	svc := users.NewService(st, c, hasher, logger)
	reg := httpapi.Registration{
		PerIP: throttle.New(cfg.registerPerMinute, cfg.registerBurst, 100_000),
		IPs:   cfg.trusted,
	}
	srv.SetInternal(cfg.internalAddr)
	httpapi.New(svc, cfg.jwt, reg, logger).Routes(srv)

	// Readiness is the database only: without Redis the service still answers.
	srv.AddCheck("database", st.Ping)
	health := store.NewHealth(st)
	srv.SetStats(func(ctx context.Context) map[string]any {
		return map[string]any{
			"database": health.Stats(ctx),
			"cache":    c.Stats(ctx),
		}
	})
	return srv.Serve(ctx)
}

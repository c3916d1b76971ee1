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
	"titanium/user-service/cache"
	"titanium/user-service/httpapi"
	"titanium/user-service/password"
	"titanium/user-service/store"
	"titanium/user-service/users"
)

func main() { service.Main("user-service", run) }

type config struct {
	dbPath     string
	sync       sqlitedb.Synchronous
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
		dbPath: env.String("USERS_DB_PATH", "data/users.db"),
		cache: cache.Config{
			Addr:     env.String("REDIS_ADDR", "127.0.0.1:6379"),
			Password: env.Secret("REDIS_PASSWORD", ""),
			TTL:      env.Duration("CACHE_TTL", 60*time.Second),
		},
		// OWASP's floor for bcrypt is 10; 16 is ~4 s per hash, past any sane login.
		bcryptCost: env.Int("BCRYPT_COST", 10, password.MinCost, 16),
		jwt:        jwtauth.LoadConfig(env, logger),
		// A person signs up once; a school behind one NAT address may sign
		// up a class at a time.
		registerPerMinute: env.Int("REGISTER_IP_PER_MINUTE", 30, 1, 1_000_000),
		registerBurst:     env.Int("REGISTER_IP_BURST", 20, 1, 1_000_000),
		internalAddr:      env.String("INTERNAL_ADDR", ":8101"),
	}
	trusted, terr := clientip.ParseTrusted(env.List("TRUSTED_PROXIES", clientip.DefaultTrusted))
	env.Check(terr == nil, "TRUSTED_PROXIES", fmt.Sprint(terr))
	c.trusted = trusted
	// NORMAL by default: in WAL mode a commit is in the WAL (in the OS page
	// cache) before it is acknowledged, so a crash of this process (kill -9,
	// OOM) loses nothing acknowledged; only a power loss or kernel crash can
	// lose the last commits. FULL fsyncs every commit and costs ~35x in
	// write throughput here. Set SQLITE_SYNCHRONOUS=FULL where a power loss
	// must not lose a registration.
	syncName := env.String("SQLITE_SYNCHRONOUS", string(sqlitedb.SyncNormal))
	s, err := sqlitedb.ParseSynchronous(syncName)
	env.Check(err == nil, "SQLITE_SYNCHRONOUS", "want NORMAL or FULL")
	c.sync = s
	env.Check(c.cache.TTL >= time.Second, "CACHE_TTL", "must be at least 1s")
	return c
}

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	cfg := loadConfig(env, logger)
	srv, err := service.Start("user-service", env, logger, ":8001")
	if err != nil {
		return err
	}

	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(openCtx, cfg.dbPath, cfg.sync)
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

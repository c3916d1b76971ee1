// Command blog-service is Titanium's blog: posts CRUD on SQLite (posts.db)
// with keyset pagination and author-only writes, and the sample SPA at /blog/.
// See docs/blog-service.md.
package main

import (
	"context"
	"fmt"
	"log/slog"

	"titanium/blog-service/httpapi"
	"titanium/blog-service/posts"
	"titanium/blog-service/store"
	"titanium/blog-service/web"
	"titanium/platform/envconfig"
	"titanium/platform/jwtauth"
	"titanium/platform/service"
	"titanium/platform/sqlitedb"
)

func main() { service.Main("blog-service", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	dbPath := env.String("POSTS_DB_PATH", "data/posts.db")
	// NORMAL by default: in WAL mode a commit is in the WAL (the OS page
	// cache) before it is acknowledged, so a killed process (kill -9, OOM,
	// crash) loses nothing; only a power loss or kernel crash can lose the
	// last commits. FULL fsyncs every commit and costs ~35x in write
	// throughput; operators who need power-loss durability set it.
	syncMode, syncErr := sqlitedb.ParseSynchronous(env.String("SQLITE_SYNCHRONOUS", string(sqlitedb.SyncNormal)))
	env.Check(syncErr == nil, "SQLITE_SYNCHRONOUS", "want NORMAL or FULL")
	env.Check(dbPath != "", "POSTS_DB_PATH", "must not be empty")
	jwtCfg := jwtauth.LoadConfig(env, logger)
	// The read cache of posts and list pages; 0 in either bound disables it.
	readCache := posts.NewCache(env.Int("POSTS_CACHE_ENTRIES", 4096, 0, 1<<20), env.Int("POSTS_CACHE_MB", 32, 0, 1<<14)<<20)

	srv, err := service.Start("blog-service", env, logger, ":8003")
	if err != nil {
		return err
	}
	posts, err := store.Open(ctx, dbPath, syncMode)
	if err != nil {
		return fmt.Errorf("posts database: %w", err)
	}
	defer posts.Close()

	httpapi.New(posts, readCache, jwtCfg, logger).Register(srv)
	srv.Handle("GET "+web.Prefix, web.Handler())
	srv.Handle("/", httpapi.NotFound())
	srv.AddCheck("database", posts.Ping)
	srv.SetStats(httpapi.Stats(posts))
	return srv.Serve(ctx)
}

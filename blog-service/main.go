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
	"titanium/platform/topology"
)

var self = topology.Get("blog-service")

func main() { service.Main(self, loadConfig, run) }

type config struct {
	posts sqlitedb.Config
	jwt   jwtauth.Config
	// The read cache of posts and list pages; 0 in either bound disables it.
	cacheEntries, cacheBytes int
}

func loadConfig(env *envconfig.Reader, logger *slog.Logger) config {
	return config{
		// SQLITE_SYNCHRONOUS=FULL where a power loss must not lose a post.
		posts: sqlitedb.LoadConfig(env, self.Data.Var, "data/"+self.Data.File),
		jwt:   jwtauth.LoadConfig(env, logger),
		cacheEntries: env.Int("POSTS_CACHE_ENTRIES", 4096, 0, 1<<20,
			"most posts and list pages the read cache keeps (0 disables it)"),
		cacheBytes: env.Int("POSTS_CACHE_MB", 32, 0, 1<<14,
			"most memory the read cache keeps, in MiB (0 disables it)") << 20,
	}
}

func run(ctx context.Context, srv *service.Server, cfg config) error {
	logger := srv.Logger
	db, err := store.Open(ctx, cfg.posts.Path, cfg.posts.Sync)
	if err != nil {
		return fmt.Errorf("posts database: %w", err)
	}
	defer db.Close()

	httpapi.New(db, posts.NewCache(cfg.cacheEntries, cfg.cacheBytes), cfg.jwt, logger).Register(srv)
	srv.Handle("GET "+web.Prefix, web.Handler())
	srv.Handle("/", httpapi.NotFound())
	srv.AddCheck("database", db.Ping)
	srv.SetStats(httpapi.Stats(db))
	return srv.Serve(ctx)
}

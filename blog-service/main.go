// Command blog-service is Titanium's blog: posts CRUD on SQLite (posts.db)
// with keyset pagination and author-only writes, and the sample SPA at /blog/.
// See docs/blog-service.md.
package main

import (
	"context"
	"fmt"
	"log/slog"

	"titanium/blog-service/httpapi"
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
}

func loadConfig(env *envconfig.Reader, logger *slog.Logger) config {
	return config{
		// SQLITE_SYNCHRONOUS=FULL where a power loss must not lose a post.
		posts: sqlitedb.LoadConfig(env, self.Data.Var, "data/"+self.Data.File),
		jwt:   jwtauth.LoadConfig(env, logger),
	}
}

func run(ctx context.Context, srv *service.Server, cfg config) error {
	logger := srv.Logger
	posts, err := store.Open(ctx, cfg.posts.Path, cfg.posts.Sync)
	if err != nil {
		return fmt.Errorf("posts database: %w", err)
	}
	defer posts.Close()

	httpapi.New(posts, cfg.jwt, logger).Register(srv)
	srv.Handle("GET "+web.Prefix, web.Handler())
	srv.Handle("/", httpapi.NotFound())
	srv.AddCheck("database", posts.Ping)
	srv.SetStats(httpapi.Stats(posts))
	return srv.Serve(ctx)
}

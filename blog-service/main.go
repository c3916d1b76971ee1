// Command blog-service is Titanium's blog-service.
package main

import (
	"context"
	"log/slog"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

func main() { service.Main("blog-service", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	srv, err := service.Start("blog-service", env, logger, ":8003")
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

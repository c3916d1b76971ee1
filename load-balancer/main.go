// Command load-balancer is Titanium's load-balancer.
package main

import (
	"context"
	"log/slog"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

func main() { service.Main("load-balancer", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	srv, err := service.Start("load-balancer", env, logger, ":7100")
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// Command api-gateway is Titanium's api-gateway.
package main

import (
	"context"
	"log/slog"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

func main() { service.Main("api-gateway", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	srv, err := service.Start("api-gateway", env, logger, ":8080")
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// Command user-service is Titanium's user-service.
package main

import (
	"context"
	"log/slog"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

func main() { service.Main("user-service", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	srv, err := service.Start("user-service", env, logger, ":8001")
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

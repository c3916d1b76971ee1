// Command auth-service is Titanium's auth-service.
package main

import (
	"context"
	"log/slog"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

func main() { service.Main("auth-service", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	srv, err := service.Start("auth-service", env, logger, ":8002")
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

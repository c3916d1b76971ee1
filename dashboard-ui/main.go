// Command dashboard-ui is Titanium's dashboard-ui.
package main

import (
	"context"
	"log/slog"

	"titanium/platform/envconfig"
	"titanium/platform/service"
)

func main() { service.Main("dashboard-ui", run) }

func run(ctx context.Context, env *envconfig.Reader, logger *slog.Logger) error {
	srv, err := service.Start("dashboard-ui", env, logger, ":8090")
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

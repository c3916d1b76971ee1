// Command dashboard-ui serves Titanium's live dashboard: one page, its
// JavaScript modules and the vendored Chart.js, all embedded in the binary.
// The page itself polls the load balancer's /stats; this service only
// serves files, so any number of replicas are interchangeable.
package main

import (
	"context"
	"log/slog"

	"titanium/dashboard-ui/web"
	"titanium/platform/envconfig"
	"titanium/platform/service"
	"titanium/platform/topology"
)

// dashboard-ui reads only the platform's variables.
func main() {
	noConfig := func(*envconfig.Reader, *slog.Logger) struct{} { return struct{}{} }
	service.Main(topology.Get("dashboard-ui"), noConfig, run)
}

func run(ctx context.Context, srv *service.Server, _ struct{}) error {
	logger := srv.Logger
	site, err := web.New()
	if err != nil {
		return err
	}
	if !site.HasChartJS() {
		// The page still works and says so; the charts stay empty.
		logger.Warn("Chart.js is not embedded: build after `make deps` (npm ci + scripts/vendor.sh) to get the charts")
	}
	srv.Handle("GET /", site)
	srv.SetStats(func(context.Context) map[string]any {
		return map[string]any{"assets": len(site.Files()), "chart_js": site.HasChartJS()}
	})
	return srv.Serve(ctx)
}

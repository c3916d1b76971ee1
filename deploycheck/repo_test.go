package deploycheck

import (
	"sync"
	"testing"

	"titanium/devstack"
)

// service is one Go service of the system: its name, port and data, as the
// README's configuration table gives them.
type service struct {
	Name string
	Port int
	// CGO: the binary links go-sqlite3, so it needs cgo and a glibc runtime.
	CGO bool
	// DataDir is where its SQLite file lives in containers, "" when stateless.
	DataDir string
}

var services = []service{
	{Name: "api-gateway", Port: 8080},
	{Name: "auth-service", Port: 8002},
	{Name: "blog-service", Port: 8003, CGO: true, DataDir: "/data"},
	{Name: "dashboard-ui", Port: 8090},
	{Name: "load-balancer", Port: 7100},
	{Name: "user-service", Port: 8001, CGO: true, DataDir: "/data"},
}

func serviceNamed(name string) (service, bool) {
	for _, s := range services {
		if s.Name == name {
			return s, true
		}
	}
	return service{}, false
}

// upstreamOf says which service a wiring variable points at, so a URL can be
// checked against the Service it names. LB_STATS_TARGETS names its services
// in each item.
var upstreamOf = map[string]string{
	"USER_SERVICE_URL": "user-service",
	"AUTH_SERVICE_URL": "auth-service",
	"BLOG_SERVICE_URL": "blog-service",
	"LB_UI_UPSTREAMS":  "dashboard-ui",
	"LB_API_UPSTREAMS": "api-gateway",
	"LB_PEERS":         "load-balancer",
	"REDIS_ADDR":       "redis",
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// repoRoot is the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() { rootDir, rootErr = devstack.FindRoot(".") })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

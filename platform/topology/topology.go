// Package topology is the one table of Titanium's services: each one's
// name, port, build needs, data and the variables that wire it to the
// others. The services take their default addresses from it, devstack runs
// the local stack from it, and deploycheck checks docker-compose.yml, the
// Kubernetes overlays, skaffold.yaml and the Dockerfiles against it.
package topology

import (
	"fmt"
	"strings"
)

// Form is how a wiring variable spells its targets.
type Form int

const (
	// URLs: comma-separated base URLs, http://host:port (or dns+http://).
	URLs Form = iota
	// HostPort: one host:port (redis).
	HostPort
	// Targets: comma-separated service=URL items, one per instance of
	// every other service.
	Targets
	// Peers: the URLs of the service's other replicas.
	Peers
)

// Upstream is a variable that points a service at another.
type Upstream struct {
	Var string
	// Service is what it reaches: a service's name or Redis; "" for Targets.
	Service string
	// Internal: the target's internal listener rather than its public port.
	Internal bool
	Form     Form
}

// Data is a service's SQLite database.
type Data struct {
	// Var is the variable holding the database path.
	Var string
	// File is the database's file name.
	File string
	// Dir is the database's directory in containers (a volume).
	Dir string
}

// Service is one Go service.
type Service struct {
	Name string
	Port int
	// InternalPort is the port of a second, internal listener (0: none),
	// set by InternalVar.
	InternalPort int
	InternalVar  string
	// CGO: the binary links go-sqlite3, so it needs cgo and a glibc runtime.
	CGO bool
	// Data is its SQLite database, nil when stateless.
	Data *Data
	// JWT: it signs or verifies tokens, so it needs JWT_SECRET.
	JWT bool
	// Upstreams are the variables that wire it to the others.
	Upstreams []Upstream
}

// Redis is the cache user-service may use.
const (
	Redis     = "redis"
	RedisPort = 6379
)

// Services are the Go services in display order (the load balancer's
// default /stats targets list them so).
var Services = []Service{
	{Name: "api-gateway", Port: 8080, Upstreams: []Upstream{
		{Var: "AUTH_SERVICE_URL", Service: "auth-service"},
		{Var: "USER_SERVICE_URL", Service: "user-service"},
		{Var: "BLOG_SERVICE_URL", Service: "blog-service"},
	}},
	// auth-service calls only /internal/authenticate, on user-service's
	// internal listener.
	{Name: "auth-service", Port: 8002, JWT: true, Upstreams: []Upstream{
		{Var: "USER_SERVICE_URL", Service: "user-service", Internal: true},
	}},
	{Name: "user-service", Port: 8001, InternalPort: 8101, InternalVar: "INTERNAL_ADDR", CGO: true, JWT: true,
		Data:      &Data{Var: "USERS_DB_PATH", File: "users.db", Dir: "/data"},
		Upstreams: []Upstream{{Var: "REDIS_ADDR", Service: Redis, Form: HostPort}}},
	{Name: "blog-service", Port: 8003, CGO: true, JWT: true,
		Data: &Data{Var: "POSTS_DB_PATH", File: "posts.db", Dir: "/data"}},
	{Name: "dashboard-ui", Port: 8090},
	{Name: "load-balancer", Port: 7100, Upstreams: []Upstream{
		{Var: "LB_UI_UPSTREAMS", Service: "dashboard-ui"},
		{Var: "LB_API_UPSTREAMS", Service: "api-gateway"},
		{Var: "LB_STATS_TARGETS", Form: Targets},
		{Var: "LB_PEERS", Service: "load-balancer", Form: Peers},
	}},
}

// Get returns the service called name.
func Get(name string) Service {
	for _, s := range Services {
		if s.Name == name {
			return s
		}
	}
	panic("topology: no service " + name)
}

// Addr is the service's default listen address, ":port".
func (s Service) Addr() string { return fmt.Sprintf(":%d", s.Port) }

// LocalURL is the service's URL on this host at its default port (its
// internal listener's when internal).
func (s Service) LocalURL(internal bool) string {
	port := s.Port
	if internal {
		port = s.InternalPort
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// Upstream returns the service's wiring variable named v.
func (s Service) Upstream(v string) (Upstream, bool) {
	for _, u := range s.Upstreams {
		if u.Var == v {
			return u, true
		}
	}
	return Upstream{}, false
}

// LocalDefault is the default of a wiring variable for a run on one host,
// every service at its default port.
func (s Service) LocalDefault(v string) string {
	u, ok := s.Upstream(v)
	if !ok {
		panic("topology: " + s.Name + " has no upstream " + v)
	}
	switch u.Form {
	case HostPort:
		return fmt.Sprintf("127.0.0.1:%d", RedisPort)
	case Targets:
		var items []string
		for _, t := range Services {
			if t.Name != s.Name {
				items = append(items, t.Name+"="+t.LocalURL(false))
			}
		}
		return strings.Join(items, ",")
	case Peers:
		return ""
	}
	return Get(u.Service).LocalURL(u.Internal)
}

// StartOrder is the services ordered so that each starts after the ones it
// calls (Targets and Peers do not count: the load balancer asks them for
// /stats but needs none of them to start).
func StartOrder() []Service {
	var out []Service
	done := map[string]bool{}
	var visit func(s Service)
	visit = func(s Service) {
		if done[s.Name] {
			return
		}
		done[s.Name] = true
		for _, u := range s.Upstreams {
			if (u.Form == URLs) && u.Service != s.Name {
				visit(Get(u.Service))
			}
		}
		out = append(out, s)
	}
	for _, s := range Services {
		visit(s)
	}
	return out
}

package deploycheck

import (
	"sync"
	"testing"

	"titanium/devstack"
	"titanium/platform/topology"
)

// service is one Go service of the system, as platform/topology declares it.
type service = topology.Service

// services are the topology's: every check here runs over the one table.
var services = topology.Services

func serviceNamed(name string) (service, bool) {
	for _, s := range services {
		if s.Name == name {
			return s, true
		}
	}
	return service{}, false
}

// dataDir is where a service's SQLite file lives in containers, "" when
// stateless.
func dataDir(s service) string {
	if s.Data == nil {
		return ""
	}
	return s.Data.Dir
}

// upstreamOf says which service a wiring variable points at, so a URL can be
// checked against the Service it names; from the topology. LB_STATS_TARGETS
// names its services in each item.
var upstreamOf = func() map[string]string {
	m := map[string]string{}
	for _, s := range services {
		for _, u := range s.Upstreams {
			if u.Form != topology.Targets {
				m[u.Var] = u.Service
			}
		}
	}
	return m
}()

// findRoot finds the directory holding go.work, once.
var findRoot = sync.OnceValues(func() (string, error) { return devstack.FindRoot(".") })

// repoRoot is the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"titanium/platform/window"
)

// requests is a window holding n requests of d each, failed of them failed.
func requests(n, failed int, d time.Duration) window.Totals {
	w := window.New(windowSeconds)
	now := time.Unix(1_700_000_000, 0)
	for i := range n {
		w.Record(now, d, i < failed)
	}
	return w.Totals(now)
}

func up(svc int, url, name string, latency time.Duration) fetched {
	return fetched{svc: svc, url: url, stats: instanceStats{Instance: name, Status: online}, latency: latency}
}

func down(svc int, url string, err string) fetched {
	return fetched{svc: svc, url: url, latency: statsTimeout, err: errors.New(err)}
}

// TestMerge covers the pure half of /stats: how one fan-out's answers become
// the statuses, rows, last-seen times and merged traffic the README documents.
func TestMerge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	earlier := now.Add(-time.Minute)
	services := []string{"api-gateway", "user-service"}
	userDB := json.RawMessage(`{"status":"ONLINE","users":3}`)
	userCache := json.RawMessage(`{"status":"OFFLINE"}`)

	type want struct {
		status          string
		active          int
		serviceStatus   []string // per service
		online, total   []int    // per service
		instances       []string // "url=instance status last_seen? error" per instance, in order
		database, cache string
		lbs             []string // "instance status"
		requests        uint64
		wsClients       int64
		realTraffic     bool
		seen            []string // urls left in seen, sorted
	}
	tests := []struct {
		name string
		f    fanout
		seen map[string]seenInstance
		want want
	}{{
		name: "every instance online",
		f: fanout{instances: []fetched{
			up(0, "http://gw1/stats", "gw-1", 2*time.Millisecond),
			up(0, "http://gw2/stats", "gw-2", 4*time.Millisecond),
			{svc: 1, url: "http://us1/stats", stats: instanceStats{Instance: "us-1", Status: online, Database: userDB, Cache: userCache}, latency: time.Millisecond},
		}},
		want: want{status: "HEALTHY", active: 2, serviceStatus: []string{online, online}, online: []int{2, 1}, total: []int{2, 1},
			instances: []string{"http://gw1/stats=gw-1 ONLINE seen", "http://gw2/stats=gw-2 ONLINE seen", "http://us1/stats=us-1 ONLINE seen"},
			database:  string(userDB), cache: string(userCache), lbs: []string{"lb-a ONLINE"},
			seen: []string{"http://gw1/stats", "http://gw2/stats", "http://us1/stats"}},
	}, {
		name: "one service down: DEGRADED, database and cache OFFLINE, last seen kept",
		f: fanout{instances: []fetched{
			up(0, "http://gw1/stats", "gw-1", time.Millisecond),
			down(1, "http://us1/stats", "connection refused"),
		}},
		seen: map[string]seenInstance{"http://us1/stats": {name: "us-1", at: earlier}},
		want: want{status: "DEGRADED", active: 1, serviceStatus: []string{online, offline}, online: []int{1, 0}, total: []int{1, 1},
			instances: []string{"http://gw1/stats=gw-1 ONLINE seen", "http://us1/stats=us-1 OFFLINE seen connection refused"},
			database:  `{"status":"OFFLINE"}`, cache: `{"status":"OFFLINE"}`, lbs: []string{"lb-a ONLINE"},
			seen: []string{"http://gw1/stats", "http://us1/stats"}},
	}, {
		name: "nothing answers, never seen: DOWN, rows named by URL",
		f: fanout{instances: []fetched{
			down(0, "http://gw1/stats", "timeout after 2s"),
			down(1, "http://us1/stats", "connection refused"),
		}},
		want: want{status: "DOWN", active: 0, serviceStatus: []string{offline, offline}, online: []int{0, 0}, total: []int{1, 1},
			instances: []string{"http://gw1/stats=http://gw1/stats OFFLINE timeout after 2s", "http://us1/stats=http://us1/stats OFFLINE connection refused"},
			database:  `{"status":"OFFLINE"}`, cache: `{"status":"OFFLINE"}`, lbs: []string{"lb-a ONLINE"}},
	}, {
		name: "a service with no instance is OFFLINE; instances gone from every pool are forgotten",
		f:    fanout{instances: []fetched{up(0, "http://gw1/stats", "gw-1", time.Millisecond)}},
		seen: map[string]seenInstance{"http://old1/stats": {name: "old", at: earlier}, "http://old2/stats": {name: "old", at: earlier}},
		want: want{status: "DEGRADED", active: 1, serviceStatus: []string{online, offline}, online: []int{1, 0}, total: []int{1, 0},
			instances: []string{"http://gw1/stats=gw-1 ONLINE seen"},
			database:  `{"status":"OFFLINE"}`, cache: `{"status":"OFFLINE"}`, lbs: []string{"lb-a ONLINE"},
			seen: []string{"http://gw1/stats"}},
	}, {
		name: "peers' traffic is added; ourselves through the peers' name is skipped; a dead peer is OFFLINE",
		f: fanout{
			instances: []fetched{up(0, "http://gw1/stats", "gw-1", time.Millisecond), up(1, "http://us1/stats", "us-1", time.Millisecond)},
			self:      replicaTotals{Totals: requests(10, 0, 5*time.Millisecond), WSClients: 1},
			peers: []peerFetched{
				{url: "http://10.0.0.1:7100", totals: replicaTotals{Instance: "lb-a", Totals: requests(99, 0, time.Millisecond), WSClients: 50}},
				{url: "http://10.0.0.2:7100", totals: replicaTotals{Instance: "lb-b", Totals: requests(5, 5, time.Millisecond), WSClients: 2, HasRealTraffic: true}},
				{url: "http://10.0.0.3:7100", err: errors.New("connection refused")},
			},
		},
		want: want{status: "HEALTHY", active: 2, serviceStatus: []string{online, online}, online: []int{1, 1}, total: []int{1, 1},
			instances: []string{"http://gw1/stats=gw-1 ONLINE seen", "http://us1/stats=us-1 ONLINE seen"},
			database:  `{"status":"OFFLINE"}`, cache: `{"status":"OFFLINE"}`,
			lbs:      []string{"lb-a ONLINE", "lb-b ONLINE", "http://10.0.0.3:7100 OFFLINE"},
			requests: 15, wsClients: 3, realTraffic: true,
			seen: []string{"http://gw1/stats", "http://us1/stats"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.now = now
			seen := tt.seen
			if seen == nil {
				seen = map[string]seenInstance{}
			}
			b := merge("lb-a", services, tt.f, seen)
			w := tt.want
			if b.Status != w.status || b.ActiveServices != w.active || b.TotalServices != len(services) {
				t.Errorf("status %s, active %d/%d; want %s, %d/%d", b.Status, b.ActiveServices, b.TotalServices, w.status, w.active, len(services))
			}
			if b.Service != "load-balancer" || b.Instance != "lb-a" || b.Timestamp != now.Format(time.RFC3339Nano) || b.WindowSeconds != windowSeconds {
				t.Errorf("header fields: %s %s %s %d", b.Service, b.Instance, b.Timestamp, b.WindowSeconds)
			}
			var instances []string
			for i, row := range b.Services {
				if row.Name != services[i] || row.Status != w.serviceStatus[i] || row.OnlineInstances != w.online[i] || row.TotalInstances != w.total[i] {
					t.Errorf("service %d: %s %s %d/%d, want %s %s %d/%d", i, row.Name, row.Status, row.OnlineInstances, row.TotalInstances,
						services[i], w.serviceStatus[i], w.online[i], w.total[i])
				}
				if row.Instances == nil {
					t.Errorf("service %s: instances is null, want a list", row.Name)
				}
				for _, in := range row.Instances {
					s := fmt.Sprintf("%s=%s %s", in.URL, in.Instance, in.Status)
					if in.LastSeen != nil {
						s += " seen"
					}
					if in.Error != "" {
						s += " " + in.Error
					}
					instances = append(instances, s)
				}
			}
			if strings.Join(instances, "\n") != strings.Join(w.instances, "\n") {
				t.Errorf("instances:\n%s\nwant:\n%s", strings.Join(instances, "\n"), strings.Join(w.instances, "\n"))
			}
			if string(b.Database) != w.database || string(b.Cache) != w.cache {
				t.Errorf("database %s cache %s, want %s %s", b.Database, b.Cache, w.database, w.cache)
			}
			var lbs []string
			for _, l := range b.LoadBalancers {
				lbs = append(lbs, l.Instance+" "+l.Status)
			}
			if strings.Join(lbs, ",") != strings.Join(w.lbs, ",") {
				t.Errorf("load balancers %v, want %v", lbs, w.lbs)
			}
			if b.TotalRequests != w.requests || b.WS.Clients != w.wsClients || b.HasRealTraffic != w.realTraffic {
				t.Errorf("traffic: %d requests, %d ws clients, real %v; want %d, %d, %v",
					b.TotalRequests, b.WS.Clients, b.HasRealTraffic, w.requests, w.wsClients, w.realTraffic)
			}
			var left []string
			for url := range seen {
				left = append(left, url)
			}
			slices.Sort(left)
			if fmt.Sprint(left) != fmt.Sprint(w.seen) {
				t.Errorf("seen after merge: %v, want %v", left, w.seen)
			}
		})
	}
}

// TestMergeAggregates: the figures are the merged window's, and an online
// instance's latency is the mean over the service's online instances.
func TestMergeAggregates(t *testing.T) {
	f := fanout{
		now: time.Now(),
		instances: []fetched{
			up(0, "http://a/stats", "a", 2*time.Millisecond),
			up(0, "http://b/stats", "b", 4*time.Millisecond),
			down(0, "http://c/stats", "connection refused"),
		},
		self:  replicaTotals{Totals: requests(8, 2, 10*time.Millisecond)},
		peers: []peerFetched{{url: "http://p", totals: replicaTotals{Instance: "lb-b", Totals: requests(2, 0, 10*time.Millisecond)}}},
	}
	b := merge("lb-a", []string{"svc"}, f, map[string]seenInstance{})
	if got := b.Services[0].LatencyMs; got != 3 {
		t.Errorf("service latency %v ms, want 3 (mean of the online instances)", got)
	}
	if b.TotalRequests != 10 || b.SuccessRate != 80 {
		t.Errorf("total %d success %v%%, want 10 and 80%%", b.TotalRequests, b.SuccessRate)
	}
	if b.AvgResponseTimeMs != 10 {
		t.Errorf("avg %v ms, want 10", b.AvgResponseTimeMs)
	}
}

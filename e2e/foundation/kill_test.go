package foundation_test

import (
	"net/http"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// TestKilledServiceIsReportedOffline: after a service is killed, the load
// balancer's /stats reports it OFFLINE within 2.5 s while every other
// service stays ONLINE.
func TestKilledServiceIsReportedOffline(t *testing.T) {
	s := stacktest.Start(t)
	type row struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	var st struct {
		Status   string `json:"status"`
		Services []row  `json:"services"`
	}
	read := func() map[string]string {
		httpc.Do(t, http.MethodGet, s.LB()+"/stats", nil).JSON(t, &st)
		m := map[string]string{}
		for _, r := range st.Services {
			m[r.Name] = r.Status
		}
		return m
	}
	all := []string{"api-gateway", "auth-service", "user-service", "blog-service", "dashboard-ui"}
	for name, status := range read() {
		if status != "ONLINE" {
			t.Fatalf("before the kill: %s is %s", name, status)
		}
	}
	if got := len(read()); got != len(all) {
		t.Fatalf("got %d services in /stats, want %d", got, len(all))
	}

	const victim = "auth-service"
	s.Proc(victim).Kill()
	killed := time.Now()
	for {
		m := read()
		if m[victim] == "OFFLINE" {
			for _, name := range all {
				if name != victim && m[name] != "ONLINE" {
					t.Errorf("%s: got %s, want ONLINE", name, m[name])
				}
			}
			if st.Status != "DEGRADED" {
				t.Errorf("overall status: got %s, want DEGRADED", st.Status)
			}
			break
		}
		if time.Since(killed) > 2500*time.Millisecond {
			t.Fatalf("%s still %s 2.5 s after the kill", victim, m[victim])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(killed); d > 2500*time.Millisecond {
		t.Fatalf("reported OFFLINE after %s, want within 2.5 s", d)
	}
}

package loadgen

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunKeepsTheArrivalRate: a server that is slow must still see the
// planned number of arrivals (open model), and failures are counted per op.
func TestRunKeepsTheArrivalRate(t *testing.T) {
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(200 * time.Millisecond)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	res := Run(context.Background(), Plan{
		Rate: 100, Duration: time.Second,
		Ops: []Op{
			{Name: "slow", Weight: 3, Do: Request(http.MethodGet, base+"/slow", nil)},
			{Name: "fail", Weight: 1, Do: Request(http.MethodGet, base+"/fail", nil)},
		},
	})
	sent, ok, failed := res.Totals()
	if sent != 100 || hits.Load() != 100 {
		t.Fatalf("sent %d, server saw %d, want 100 each\n%s", sent, hits.Load(), res)
	}
	if ok != 75 || failed != 25 || res.Ops["fail"].Statuses[503] != 25 {
		t.Errorf("ok %d failed %d, want 75 and 25\n%s", ok, failed, res)
	}
	if res.Count5xx() != 25 {
		t.Errorf("5xx: got %d, want 25", res.Count5xx())
	}
	if p := res.Ops["slow"].Percentile(0.5); p < 200*time.Millisecond {
		t.Errorf("p50 of slow: got %s, want >= 200ms", p)
	}
	// Open model: 75 slow requests of 200 ms over one second overlap; a
	// closed loop would have taken far longer than ~1.2 s.
	if res.Elapsed > 3*time.Second {
		t.Errorf("run took %s: arrivals waited for responses", res.Elapsed)
	}
}

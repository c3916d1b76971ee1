package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunMix runs a real open-model mix against a real HTTP server: every
// request is counted once, under its op, with the server's status codes;
// Answer sees the bodies; the server never sees the op-tracking header.
func TestRunMix(t *testing.T) {
	var served atomic.Int64
	var leaked atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get(opHeader) != "" || r.Header.Get("X-Vegeta-Seq") != "" || r.Header.Get("X-Vegeta-Attack") != "" {
			leaked.Add(1)
		}
		if r.Method == http.MethodPost {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok " + r.Header.Get("X-Kind")))
	}))
	defer srv.Close()
	var answers []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := Run(ctx, Spec{Rate: 200, Duration: time.Second, Timeout: 2 * time.Second},
		Op{Name: "list", Weight: 3, Target: Request(http.MethodGet, srv.URL+"/list", nil, "X-Kind", "list"),
			Answer: func(status int, body []byte) { answers = append(answers, fmt.Sprint(status, " ", string(body))) }},
		Op{Name: "create", Weight: 1, Target: Request(http.MethodPost, srv.URL+"/create", []byte(`{}`))},
	)
	sent, ok, failed := r.Totals()
	// A busy machine may lose a few starts at the end of the second.
	if sent < 100 || sent > 201 {
		t.Fatalf("sent %d, want about 200\n%s", sent, r)
	}
	if served.Load() != sent {
		t.Errorf("server saw %d requests, result counts %d", served.Load(), sent)
	}
	if leaked.Load() != 0 {
		t.Errorf("%d requests reached the server with %s or vegeta's X-Vegeta-* headers", leaked.Load(), opHeader)
	}
	list, create := r.Ops["list"], r.Ops["create"]
	if d := list.Sent - 3*create.Sent; d < 0 || d > 3 {
		t.Errorf("list %d, create %d: want the 3:1 weights", list.Sent, create.Sent)
	}
	if create.Failed != create.Sent || create.Statuses[503] != create.Sent || r.Count5xx() != create.Sent {
		t.Errorf("creates: %+v; want every create counted as a failed 503", create)
	}
	if ok != list.Sent || list.OK != list.Sent || ok+failed != sent {
		t.Errorf("ok %d failed %d sent %d list %d", ok, failed, sent, list.Sent)
	}
	if int64(len(answers)) != list.Sent || answers[0] != "200 ok list" {
		t.Errorf("Answer saw %d answers (first %q), want %d of \"200 ok list\"", len(answers), answers[0], list.Sent)
	}
	if r.Percentile(50) <= 0 || r.Percentile(99) < r.Percentile(50) || r.Percentile(100) < r.Percentile(99) || r.Achieved < 100 {
		t.Errorf("latencies/rate not filled: p50 %s p99 %s achieved %.0f", r.Percentile(50), r.Percentile(99), r.Achieved)
	}
	if st := r.Status(); !strings.Contains(st, "503") {
		t.Errorf("Status() = %q, want the 503s", st)
	}
}

// TestRunKeepsTheArrivalRate: a server that is slow must still see the
// planned number of arrivals (open model), and OK decides what succeeds.
func TestRunKeepsTheArrivalRate(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond) // the server under test is slow
			return
		}
		w.WriteHeader(http.StatusGatewayTimeout)
	}))
	defer srv.Close()
	res := Run(context.Background(), Spec{Rate: 100, Duration: time.Second},
		Op{Name: "slow", Weight: 3, Target: Request(http.MethodGet, srv.URL+"/slow", nil)},
		Op{Name: "504", Weight: 1, Target: Request(http.MethodGet, srv.URL+"/504", nil),
			OK: func(s int) bool { return s == http.StatusGatewayTimeout }},
	)
	sent, ok, failed := res.Totals()
	if sent < 90 || sent > 101 || hits.Load() != sent {
		t.Fatalf("sent %d, server saw %d, want 100 each\n%s", sent, hits.Load(), res)
	}
	if ok != sent || failed != 0 || res.Ops["504"].Statuses[504] != res.Ops["504"].Sent {
		t.Errorf("ok %d failed %d, want every request a success (504s by OK)\n%s", ok, failed, res)
	}
	if p := res.Ops["slow"].Percentile(50); p < 200*time.Millisecond {
		t.Errorf("p50 of slow: got %s, want >= 200ms", p)
	}
	// Open model: 75 slow requests of 200 ms over one second overlap; a
	// closed loop would have taken far longer than ~1.2 s.
	if res.Elapsed > 3*time.Second {
		t.Errorf("run took %s: arrivals waited for responses", res.Elapsed)
	}
}

// TestRunCountsTransportErrors: a request that gets no answer is a failure
// with status 0 and the transport's message, under its op.
func TestRunCountsTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	res := Run(context.Background(), Spec{Rate: 50, Duration: 200 * time.Millisecond, Timeout: time.Second},
		Op{Name: "dead", Target: Request(http.MethodGet, dead+"/x", nil)})
	o := res.Ops["dead"]
	if o == nil || o.Sent == 0 || o.Failed != o.Sent || o.Statuses[0] != o.Sent || len(o.Errors) == 0 {
		t.Fatalf("requests to a closed port: %+v, want every one failed with status 0 and a message", o)
	}
	for msg := range o.Errors {
		if !strings.Contains(msg, "refused") {
			t.Errorf("error message %q, want the connect refusal", msg)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 2s test @ http://127.0.0.1:8080/api/bench
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.29ms    2.01ms  40.11ms   88.26%
    Req/Sec    10.01k   812.13    11.52k    70.00%
  Latency Distribution
     50%    2.91ms
     75%    3.70ms
     90%    4.87ms
     99%   11.35ms
  39866 requests in 2.00s, 6.46MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  19900.45
Transfer/sec:      3.23MB
`
	w, err := ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if w.RPS != 19900.45 || w.Requests != 39866 || w.Errors != 7 {
		t.Errorf("got rps %v requests %d errors %d, want 19900.45 39866 7", w.RPS, w.Requests, w.Errors)
	}
	if w.P50 != 2910*time.Microsecond || w.P99 != 11350*time.Microsecond {
		t.Errorf("got p50 %v p99 %v", w.P50, w.P99)
	}
	if _, err := ParseWrk("unable to connect"); err == nil {
		t.Error("ParseWrk of garbage: want an error")
	}
}

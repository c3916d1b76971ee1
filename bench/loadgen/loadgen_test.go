package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestOpen runs a real open-model attack against a real HTTP server: every
// request is counted once, by kind, with the server's status codes.
func TestOpen(t *testing.T) {
	var served = make(chan string, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served <- r.Method
		if r.Method == http.MethodPost {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	tr := func(i uint64, tg *vegeta.Target) {
		if i%4 == 3 {
			tg.Method, tg.URL = http.MethodPost, srv.URL+"/create"
			return
		}
		Get(tg, srv.URL+"/list")
	}
	kind := func(method, _ string) string {
		if method == http.MethodPost {
			return "create"
		}
		return "list"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := Open(ctx, Spec{Rate: 200, Duration: time.Second, Timeout: 2 * time.Second}, tr, kind)
	if r.Sent < 100 || r.Sent > 210 {
		t.Fatalf("sent %d, want about 200", r.Sent)
	}
	if got := len(served); got != r.Sent {
		t.Errorf("server saw %d requests, result counts %d", got, r.Sent)
	}
	creates := r.ByName["create"]
	if creates == nil || creates.Errors != creates.Count || r.ByCode[503] != creates.Count {
		t.Errorf("creates: %+v, 503s %d; want every create counted as a 503 error", creates, r.ByCode[503])
	}
	if r.OK != r.ByName["list"].Count || r.OK+r.Errors != r.Sent {
		t.Errorf("ok %d errors %d sent %d list %d", r.OK, r.Errors, r.Sent, r.ByName["list"].Count)
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 || r.Achieved <= 0 {
		t.Errorf("latencies/rate not filled: %+v", r)
	}
	if !strings.Contains(r.Status(), "503") {
		t.Errorf("Status() = %q, want the 503s", r.Status())
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

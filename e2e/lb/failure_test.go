package lb_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// TestTwoGatewaysSpreadAndSurviveAKill: the LB spreads requests over two
// gateway instances, and killing one in the middle of a load loop fails no GET.
func TestTwoGatewaysSpreadAndSurviveAKill(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithReplicas("api-gateway", 2))
	lb := s.LB()
	gws := s.Instances("api-gateway")
	if len(gws) != 2 {
		t.Fatalf("got %d gateways, want 2", len(gws))
	}
	served := func(base string) uint64 {
		var st struct {
			Requests struct {
				Requests uint64 `json:"requests"`
			} `json:"requests"`
		}
		httpc.Do(t, http.MethodGet, base+"/stats", nil).JSON(t, &st)
		return st.Requests.Requests
	}
	const n = 200
	for i := range n {
		if r := httpc.Do(t, http.MethodGet, lb+"/api/health", nil); r.Status != 200 {
			t.Fatalf("request %d: got %d", i, r.Status)
		}
	}
	if _, on, total := getStats(t, lb).Service("api-gateway"); on != 2 || total != 2 {
		t.Fatalf("/stats api-gateway: got %d/%d instances online, want 2/2", on, total)
	}
	a, b := served(gws[0].URL), served(gws[1].URL)
	if a < n/5 || b < n/5 {
		t.Fatalf("spread: gateway-1 served %d, gateway-2 %d of %d; want each at least %d", a, b, n, n/5)
	}

	// A bounded load loop (4 workers, at most 800 requests and 20 s); one
	// gateway is killed after 150 requests.
	const total = 800
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(20 * time.Second)
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := sent.Add(1)
				if i > total {
					return
				}
				if i == 150 {
					once.Do(func() { gws[0].Kill(); close(killed) })
				}
				r, err := httpc.Try(http.MethodGet, lb+"/api/health", nil)
				if err != nil || r.Status != 200 {
					failed.Add(1)
					if err == nil {
						err = errStatus(r)
					}
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("the load loop ended before the kill")
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d GETs failed after killing a gateway; first: %v", f, min(sent.Load(), total), firstErr.Load())
	}
	waitStats(t, lb, 3*time.Second, func(st stats) bool {
		status, on, total := st.Service("api-gateway")
		return status == "ONLINE" && on == 1 && total == 2 && st.Status == "HEALTHY"
	})
}

type statusErr struct {
	code int
	body string
}

func (e statusErr) Error() string { return http.StatusText(e.code) + ": " + e.body }

func errStatus(r *httpc.Response) error { return statusErr{r.Status, string(r.Body)} }

// TestHungService: a SIGSTOPped service is reported OFFLINE by /stats within
// 2.1 s, 100 concurrent /stats callers share one fan-out, and a gateway call
// to the hung service is a 504 within 2.1 s.
func TestHungService(t *testing.T) {
	// No reuse of an answer: the callers below must get a fan-out made
	// after the SIGSTOP, and share it.
	s := stacktest.Start(t, stacktest.WithEnv("load-balancer", "LB_STATS_CACHE", "0s"))
	lb := s.LB()
	blog := s.Proc("blog-service")
	if err := blog.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blog.Signal(syscall.SIGCONT) })

	before := getLocal(t, lb).Fanouts
	const callers = 100
	var wg sync.WaitGroup
	var slowest atomic.Int64
	errs := make(chan error, callers)
	bodies := make(chan []byte, callers)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			r, err := httpc.Try(http.MethodGet, lb+"/stats", nil)
			d := time.Since(t0)
			for {
				old := slowest.Load()
				if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
					break
				}
			}
			if err != nil {
				errs <- err
				return
			}
			bodies <- r.Body
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	close(bodies)
	for err := range errs {
		t.Fatalf("/stats: %v", err)
	}
	if d := time.Duration(slowest.Load()); d > 2100*time.Millisecond {
		t.Errorf("slowest /stats with a hung service took %s, want <= 2.1 s", d)
	}
	if got := getLocal(t, lb).Fanouts - before; got != 1 {
		t.Errorf("%d concurrent /stats callers caused %d fan-outs, want 1", callers, got)
	}
	for b := range bodies {
		var st stats
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		status, _, _ := st.Service("blog-service")
		if status != "OFFLINE" || st.Status != "DEGRADED" || st.ActiveServices != 4 {
			t.Fatalf("hung blog-service: got blog=%s status=%s active=%d, want OFFLINE DEGRADED 4", status, st.Status, st.ActiveServices)
		}
		for _, name := range []string{"api-gateway", "auth-service", "user-service", "dashboard-ui"} {
			if status, _, _ := st.Service(name); status != "ONLINE" {
				t.Errorf("%s: got %s, want ONLINE", name, status)
			}
		}
		break
	}

	// The gateway answers a call to the hung service with a JSON 504 in time.
	t0 := time.Now()
	r := httpc.Do(t, http.MethodGet, s.URL("api-gateway")+"/api/posts", nil)
	d := time.Since(t0)
	if r.Status != http.StatusGatewayTimeout || r.Map(t)["code"] != "gateway_timeout" {
		t.Fatalf("gateway call to a hung service: got %d %s, want JSON 504", r.Status, r.Body)
	}
	if d > 2100*time.Millisecond {
		t.Errorf("gateway 504 took %s, want <= 2.1 s", d)
	}

	// Back: SIGCONT and the service is ONLINE again.
	if err := blog.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitStats(t, lb, 5*time.Second, func(st stats) bool { return st.Status == "HEALTHY" })
}

package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func newPool(t *testing.T, n int, opts Options) *Pool {
	t.Helper()
	var specs []string
	for i := range n {
		specs = append(specs, fmt.Sprintf("http://10.0.0.%d:80", i+1))
	}
	p, err := New("svc", specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSpec(t *testing.T) {
	good := []string{"http://a:1", "https://a", "dns+http://svc.ns.svc:8080", "http://[::1]:80/"}
	for _, s := range good {
		if err := ValidateSpecs([]string{s}); err != nil {
			t.Errorf("%q: got %v, want valid", s, err)
		}
	}
	bad := []string{"ftp://a", "http://", "a:80", "http://a:99999", "http://a/path", "http://u:p@a", "dns+tcp://a:1"}
	for _, s := range bad {
		if err := ValidateSpecs([]string{s}); err == nil {
			t.Errorf("%q: got valid, want an error", s)
		}
	}
}

func TestSelectorsSkipUnavailableHosts(t *testing.T) {
	for _, sel := range []Selector{&RoundRobin{}, &LeastRequests{}} {
		t.Run(fmt.Sprintf("%T", sel), func(t *testing.T) {
			p := newPool(t, 3, Options{Selector: sel})
			hosts := p.Hosts()
			hosts[0].state.Or(stateUnhealthy)
			hosts[2].state.Or(stateEjected)
			for range 100 {
				if got := p.Select(nil); got != hosts[1] {
					t.Fatalf("got %s, want the only available host %s", got.Addr(), hosts[1].Addr())
				}
			}
			hosts[1].state.Or(stateUnhealthy)
			if got := sel.Select(hosts, nil); got != nil {
				t.Fatalf("no host available: selector got %s, want nil", got.Addr())
			}
			// The pool still answers (panic mode) rather than failing outright.
			if got := p.Select(nil); got == nil {
				t.Fatal("pool with no available host: got nil, want a fallback host")
			}
		})
	}
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	p := newPool(t, 3, Options{Selector: &RoundRobin{}})
	counts := map[*Host]int{}
	for range 300 {
		counts[p.Select(nil)]++
	}
	for _, h := range p.Hosts() {
		if counts[h] != 100 {
			t.Errorf("%s: got %d picks, want 100", h.Addr(), counts[h])
		}
	}
}

func TestLeastRequestsPrefersTheLessBusy(t *testing.T) {
	p := newPool(t, 2, Options{Selector: &LeastRequests{}})
	hosts := p.Hosts()
	hosts[0].inflight.Store(10)
	for range 50 {
		if got := p.Select(nil); got != hosts[1] {
			t.Fatalf("got %s (inflight %d), want the idle host", got.Addr(), got.Inflight())
		}
	}
	// Spread when equal.
	hosts[0].inflight.Store(0)
	counts := map[*Host]int{}
	for range 1000 {
		counts[p.Select(nil)]++
	}
	if counts[hosts[0]] < 300 || counts[hosts[1]] < 300 {
		t.Errorf("equal load: got %d/%d, want both well used", counts[hosts[0]], counts[hosts[1]])
	}
}

func TestEjection(t *testing.T) {
	t.Run("connect error ejects at once, 5xx after MaxFails", func(t *testing.T) {
		p := newPool(t, 4, Options{MaxFails: 3})
		h := p.Hosts()
		p.Fail(h[0], true, "dial")
		if !h[0].Ejected() {
			t.Fatal("connect error: host not ejected")
		}
		p.Fail(h[1], false, "502")
		p.Fail(h[1], false, "502")
		if h[1].Ejected() {
			t.Fatal("two 502s: ejected, want MaxFails=3 first")
		}
		p.Succeed(h[1])
		p.Fail(h[1], false, "502")
		p.Fail(h[1], false, "502")
		if h[1].Ejected() {
			t.Fatal("a success in between must restart the count")
		}
		p.Fail(h[1], false, "502")
		if !h[1].Ejected() {
			t.Fatal("three consecutive 502s: not ejected")
		}
		// 50% of 4 = 2 ejected: a third is refused.
		p.Fail(h[2], true, "dial")
		if h[2].Ejected() {
			t.Fatal("ejection cap exceeded")
		}
	})
	t.Run("the last available instance is never ejected", func(t *testing.T) {
		p := newPool(t, 2, Options{MaxEjectPercent: 100})
		h := p.Hosts()
		p.Fail(h[0], true, "dial")
		p.Fail(h[1], true, "dial")
		if !h[0].Ejected() || h[1].Ejected() {
			t.Fatalf("got ejected %v/%v, want first only", h[0].Ejected(), h[1].Ejected())
		}
		single := newPool(t, 1, Options{})
		single.Fail(single.Hosts()[0], true, "dial")
		if !single.Hosts()[0].Available() {
			t.Fatal("a single instance was ejected")
		}
	})
	t.Run("concurrent failures keep one instance", func(t *testing.T) {
		p := newPool(t, 3, Options{MaxEjectPercent: 100})
		var wg sync.WaitGroup
		for _, h := range p.Hosts() {
			for range 10 {
				wg.Go(func() { p.Fail(h, true, "dial") })
			}
		}
		wg.Wait()
		avail := 0
		for _, h := range p.Hosts() {
			if h.Available() {
				avail++
			}
		}
		if avail != 1 {
			t.Fatalf("got %d available, want exactly 1", avail)
		}
	})
	t.Run("re-admission after the ejection time, with back-off", func(t *testing.T) {
		p := newPool(t, 2, Options{EjectFor: time.Second})
		h := p.Hosts()[0]
		now := time.Now()
		p.eject(h, "dial", now)
		p.readmit(now.Add(500 * time.Millisecond))
		if !h.Ejected() {
			t.Fatal("re-admitted too early")
		}
		p.readmit(now.Add(1100 * time.Millisecond))
		if h.Ejected() {
			t.Fatal("not re-admitted after EjectFor")
		}
		// Ejected again without a success in between: twice as long.
		p.eject(h, "dial", now)
		p.readmit(now.Add(1500 * time.Millisecond))
		if !h.Ejected() {
			t.Fatal("second ejection: want 2 s")
		}
	})
}

func TestActiveHealthChecks(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("checked %s, want /readyz", r.URL.Path)
		}
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	p, err := New("svc", []string{srv.URL, "http://127.0.0.1:1"}, Options{HealthPath: "/readyz", HealthFails: 2, HealthTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	live, dead := p.Hosts()[0], p.Hosts()[1]
	p.CheckNow(ctx)
	if !live.Healthy() || !dead.Healthy() {
		t.Fatal("one failed check must not mark a host unhealthy (HealthFails=2)")
	}
	p.CheckNow(ctx)
	if !live.Healthy() || dead.Healthy() {
		t.Fatalf("after two rounds: live healthy=%v dead healthy=%v", live.Healthy(), dead.Healthy())
	}
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	p.CheckNow(ctx)
	p.CheckNow(ctx)
	if live.Healthy() {
		t.Fatal("503 readiness: still healthy")
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	live.state.Or(stateEjected)
	p.CheckNow(ctx)
	if !live.Available() {
		t.Fatal("a passing check must re-admit the host (healthy and not ejected)")
	}
}

func TestDNSReResolution(t *testing.T) {
	var mu sync.Mutex
	answer := []string{"10.1.0.2", "10.1.0.1"}
	var fail error
	lookup := func(_ context.Context, host string) ([]string, error) {
		if host != "gw.titanium.svc" {
			t.Errorf("looked up %q", host)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), answer...), fail
	}
	p, err := New("gw", []string{"dns+http://gw.titanium.svc:8080", "http://127.0.0.1:9"}, Options{LookupHost: lookup})
	if err != nil {
		t.Fatal(err)
	}
	addrs := func() []string {
		var out []string
		for _, h := range p.Hosts() {
			out = append(out, h.Addr())
		}
		return out
	}
	if got, want := fmt.Sprint(addrs()), "[10.1.0.1:8080 10.1.0.2:8080 127.0.0.1:9]"; got != want {
		t.Fatalf("initial: got %s, want %s", got, want)
	}
	kept := p.Hosts()[1]
	kept.inflight.Store(7)
	mu.Lock()
	answer = []string{"10.1.0.2", "10.1.0.3"}
	mu.Unlock()
	p.resolve(context.Background())
	if got, want := fmt.Sprint(addrs()), "[10.1.0.2:8080 10.1.0.3:8080 127.0.0.1:9]"; got != want {
		t.Fatalf("after a scale event: got %s, want %s", got, want)
	}
	if p.Hosts()[0] != kept {
		t.Error("a host still in DNS must keep its state (same *Host)")
	}
	mu.Lock()
	fail = errors.New("SERVFAIL")
	mu.Unlock()
	p.resolve(context.Background())
	if got := len(p.Hosts()); got != 3 {
		t.Fatalf("failed lookup: got %d hosts, want the previous 3", got)
	}
}

package reliability_test

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"titanium/bench/loadgen"
	"titanium/devstack"
	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

func r3Hang(t *testing.T, p profile, rep *report) {
	s := stacktest.Start(t)
	f := newFixture(t, s)
	lb, gw, blog := s.Proc("load-balancer"), s.Proc("api-gateway"), s.Proc("blog-service")
	// Warm up the pools, then take the baseline.
	warm := loadgen.Run(context.Background(), loadgen.Spec{Rate: 50, Duration: 2 * time.Second}, f.mixedOps(nil)...)
	lbStats(t, s)
	baseG := map[string]int{"load-balancer": goroutines(t, lb), "api-gateway": goroutines(t, gw)}
	baseFD := map[string]int{"load-balancer": procFDs(lb.Pid()), "api-gateway": procFDs(gw.Pid())}

	if err := blog.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blog.Signal(syscall.SIGCONT) })
	var sent, failures int64
	start := time.Now()
	r, err := httpc.Try(http.MethodGet, f.base+"/api/posts?limit=5", nil)
	took := time.Since(start)
	sent++
	if err != nil || r.Status != http.StatusGatewayTimeout || took > 2100*time.Millisecond {
		failures++
		t.Errorf("gateway call to a hung service: got %v %v after %s, want 504 within 2.1s", statusOf(r), err, took)
	}
	start = time.Now()
	stats := lbStats(t, s)
	statsTook := time.Since(start)
	sent++
	if statsTook > 2100*time.Millisecond || serviceStatus(stats, "blog-service") != "OFFLINE" {
		failures++
		t.Errorf("/stats with blog hung: took %s, blog %q; want <= 2.1s and OFFLINE", statsTook, serviceStatus(stats, "blog-service"))
	}
	if got := serviceStatus(stats, "user-service"); got != "ONLINE" {
		t.Errorf("user-service while blog hangs: got %q, want ONLINE", got)
	}
	// Several more calls while hung must all fail fast, never pile up.
	hung := loadgen.Run(context.Background(), loadgen.Spec{Rate: 20, Duration: 2 * time.Second},
		loadgen.Op{Name: "list", Weight: 1, Target: loadgen.Request(http.MethodGet, f.base+"/api/posts", nil),
			OK: func(s int) bool { return s == http.StatusGatewayTimeout }})
	if _, _, fl := hung.Totals(); fl > 0 || hung.Ops["list"].Percentile(100) > 2100*time.Millisecond {
		t.Errorf("while hung: want every call a 504 within 2.1s\n%s", hung)
	}

	if err := blog.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	recovered := waitFor(t, 10*time.Second, "blog-service ONLINE and serving after SIGCONT", func() bool {
		r, err := httpc.Try(http.MethodGet, f.base+"/api/posts?limit=5", nil)
		return err == nil && r.Status == http.StatusOK && serviceStatus(lbStats(t, s), "blog-service") == "ONLINE"
	})
	// Connections opened for the hung calls are closed by timeouts; give
	// idle ones time to go, then compare with the baseline.
	var leakG, leakFD string
	waitFor(t, 45*time.Second, "goroutines and fds back to baseline", func() bool {
		leakG, leakFD = "", ""
		for _, proc := range []*devstack.Proc{lb, gw} {
			name := proc.Service
			g := goroutines(t, proc)
			fd := procFDs(proc.Pid())
			if g > baseG[name]+10 {
				leakG += fmt.Sprintf("%s %d->%d ", name, baseG[name], g)
			}
			if fd > baseFD[name]+10 {
				leakFD += fmt.Sprintf("%s %d->%d ", name, baseFD[name], fd)
			}
		}
		return leakG == "" && leakFD == ""
	})
	wsent, _, wfailed := warm.Totals()
	rep.add(t, row{Scenario: "R3 hang", Load: "50 rps mixed warm-up, 20 rps while hung", Fault: "SIGSTOP blog-service, then SIGCONT",
		Sent: sent + wsent + hung.Ops["list"].Sent, Failures: failures + wfailed,
		Detail: fmt.Sprintf("504 after %s; /stats in %s with blog OFFLINE; recovered %s after SIGCONT; goroutines/fds back to baseline",
			took.Round(time.Millisecond), statsTook.Round(time.Millisecond), recovered.Round(time.Millisecond))})
}

func statusOf(r *httpc.Response) any {
	if r == nil {
		return "no response"
	}
	return r.Status
}

func r4RedisOutage(t *testing.T, p profile, rep *report) {
	s := stacktest.Start(t)
	base := s.LB()
	id, token := registerAndLogin(t, base, uniqueName("cache"))
	userURL := fmt.Sprintf("%s/api/users/%d", base, id)
	ops := []loadgen.Op{
		{Name: "get", Weight: 9, Target: loadgen.Request(http.MethodGet, userURL, nil)},
		{Name: "list", Weight: 1, Target: loadgen.Request(http.MethodGet, base+"/api/users?limit=10", nil)},
	}
	load := p.r2Load + 6*time.Second
	done := runLoad(context.Background(), loadgen.Spec{Rate: p.rate, Duration: load}, ops...)
	cacheStatus := func() string { return nested(lbStats(t, s), "cache.status") }
	waitFor(t, 5*time.Second, "cache ONLINE", func() bool { return cacheStatus() == "ONLINE" })
	time.Sleep(time.Second)

	s.Redis.Kill()
	offline := waitFor(t, 5*time.Second, "cache OFFLINE after redis died", func() bool { return cacheStatus() == "OFFLINE" })
	// A change while redis is down must not be hidden by a stale cache entry later.
	email := uniqueName("new") + "@example.test"
	r := httpc.Do(t, http.MethodPatch, userURL, map[string]string{"email": email}, "Authorization", "Bearer "+token)
	if r.Status != http.StatusOK {
		t.Fatalf("update during the outage: got %d %s", r.Status, r.Body)
	}
	time.Sleep(2 * time.Second)
	restart(t, s.Redis)
	online := waitFor(t, 10*time.Second, "cache ONLINE after redis restarted", func() bool { return cacheStatus() == "ONLINE" })
	var stale int
	for i := 0; i < 20; i++ {
		var u struct {
			Email string `json:"email"`
		}
		httpc.Do(t, http.MethodGet, userURL, nil, "Authorization", "Bearer "+token).JSON(t, &u)
		if u.Email != email {
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d of 20 reads after the outage returned a stale email", stale)
	}
	res := <-done
	sent, _, failed := res.Totals()
	if n := res.Count5xx(); n > 0 || failed > 0 {
		t.Errorf("redis outage: %d 5xx, %d failures, want 0\n%s", n, failed, res)
	}
	rep.add(t, row{Scenario: "R4 redis outage", Load: fmt.Sprintf("%d rps user reads, %s", p.rate, load), Fault: "kill -9 redis, restart",
		Sent: sent, Failures: failed,
		Detail: fmt.Sprintf("cache OFFLINE in %s, ONLINE %s after restart, 0 stale reads of 20, p99 get %s",
			offline.Round(time.Millisecond), online.Round(time.Millisecond), res.Ops["get"].Percentile(99).Round(time.Microsecond))})
}

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"titanium/bench/loadgen"
	"titanium/bench/nginx"
	"titanium/bench/report"
	"titanium/devstack"
)

// wrkConns and wrkThreads are the same for every proxy compared.
const (
	wrkThreads = 2
	wrkConns   = 64
)

// measured is one proxy's best closed-loop round and its CPU per request.
type measured struct {
	best       loadgen.Wrk
	cpuPerReq  time.Duration // least over rounds
	roundsRPS  []float64
	cpuPerReqs []time.Duration
}

// roundRobin measures each target with wrk in turn, rounds times, so that
// a burst of other work on the machine hits every target alike; each gets
// its best round (max throughput is what the machine allows when least
// disturbed). pids, when not 0, are charged CPU per request.
func roundRobin(ctx context.Context, b *bench, names []string, urls []string, pids []int, rounds int, d time.Duration) (map[string]*measured, error) {
	out := map[string]*measured{}
	for _, n := range names {
		out[n] = &measured{}
	}
	// A short warm-up of each: connection pools, page faults, JIT-free but
	// not cache-free.
	for _, u := range urls {
		if _, err := loadgen.RunWrk(ctx, u, wrkThreads, wrkConns, time.Second); err != nil {
			return nil, err
		}
	}
	for r := 0; r < rounds; r++ {
		for i, n := range names {
			var c0 time.Duration
			if pids[i] != 0 {
				c0, _ = cpuTime(pids[i])
			}
			w, err := loadgen.RunWrk(ctx, urls[i], wrkThreads, wrkConns, d)
			if err != nil {
				return nil, err
			}
			m := out[n]
			m.roundsRPS = append(m.roundsRPS, w.RPS)
			if w.RPS > m.best.RPS {
				m.best = w
			}
			if pids[i] != 0 && w.Requests > 0 {
				c1, _ := cpuTime(pids[i])
				per := (c1 - c0) / time.Duration(w.Requests)
				m.cpuPerReqs = append(m.cpuPerReqs, per)
				if m.cpuPerReq == 0 || per < m.cpuPerReq {
					m.cpuPerReq = per
				}
			}
			b.logf("round %d %-14s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", r+1, n, w.RPS, report.Ms(w.P50), report.Ms(w.P99), w.Errors)
		}
	}
	return out, nil
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

func fmtRPS(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, "/")
}

// runB2: the load balancer binary alone and nginx, each in front of the
// same trivial backend, measured with wrk (closed loop, same threads and
// connections) in alternating rounds.
func runB2(ctx context.Context, b *bench) error {
	be, err := startBackend(ctx)
	if err != nil {
		return err
	}
	defer be.Stop(5 * time.Second)
	lb, err := startLB(ctx, b.bin, be.URL, true, true)
	if err != nil {
		return err
	}
	defer lb.Stop(5 * time.Second)
	slow, err := startLB(ctx, b.bin, be.URL, true, false)
	if err != nil {
		return err
	}
	defer slow.Stop(5 * time.Second)
	port, err := devstack.FreePort()
	if err != nil {
		return err
	}
	ng, err := nginx.Start(ctx, port, strings.TrimPrefix(be.URL, "http://"), 2)
	if err != nil {
		return err
	}
	defer ng.Stop()
	stock, err := startStockProxy(ctx, be.URL)
	if err != nil {
		return err
	}
	defer stock.Stop(5 * time.Second)
	rounds, d := 3, 6*time.Second
	if b.quick {
		rounds, d = 1, time.Second
	}
	direct := "direct"
	stockName := "stock ReverseProxy"
	slowName := "LB net/http"
	m, err := roundRobin(ctx, b, []string{"load-balancer", "nginx", slowName, stockName, direct},
		[]string{lb.URL + "/api/bench", ng.URL + "/api/bench", slow.URL + "/api/bench", stock.URL + "/api/bench", be.URL + "/api/bench"},
		[]int{lb.Pid(), 0, slow.Pid(), 0, 0}, rounds, d)
	if err != nil {
		return err
	}
	l, n := m["load-balancer"], m["nginx"]
	if n.best.RPS == 0 {
		return fmt.Errorf("nginx served nothing")
	}
	note := fmt.Sprintf("wrk -t%d -c%d, best of %d rounds of %s", wrkThreads, wrkConns, rounds, d)
	b.rep.Add("B2", "LB max throughput", l.best.RPS, "req/s", fmt.Sprintf("fasthttp front; rounds %s; p99 %.2f ms; errors %d", fmtRPS(l.roundsRPS), report.Ms(l.best.P99), l.best.Errors))
	b.rep.Add("B2", "nginx max throughput", n.best.RPS, "req/s", fmt.Sprintf("rounds %s; p99 %.2f ms; errors %d", fmtRPS(n.roundsRPS), report.Ms(n.best.P99), n.best.Errors))
	sl := m[slowName]
	b.rep.Add("B2", "LB on its net/http chain (LB_FAST_PATH=false)", sl.best.RPS, "req/s", fmt.Sprintf("rounds %s; LB CPU %.1f µs/req vs %.1f with the fasthttp front", fmtRPS(sl.roundsRPS), us(sl.cpuPerReq), us(l.cpuPerReq)))
	st := m[stockName]
	b.rep.Add("B2", "stock ReverseProxy max throughput", st.best.RPS, "req/s", fmt.Sprintf("httputil.NewSingleHostReverseProxy, 256 idle conns; rounds %s", fmtRPS(st.roundsRPS)))
	b.rep.Add("B2", "backend direct (no proxy)", m[direct].best.RPS, "req/s", "ceiling for both")
	if st.best.RPS > 0 {
		b.rep.Add("B2", "LB / stock ReverseProxy throughput", l.best.RPS/st.best.RPS, "×", "what the LB's proxy path gains over net/http's stock proxy")
		b.rep.Add("B2", "stock ReverseProxy / nginx throughput", st.best.RPS/n.best.RPS, "×", "the baseline's own gap to nginx here")
	}
	b.rep.AddTarget("B2", "LB / nginx throughput", l.best.RPS/n.best.RPS, "×", true, 0.7, note)
	if l.best.Errors+n.best.Errors > 0 {
		b.rep.Add("B2", "errors during B2", float64(l.best.Errors+n.best.Errors), "", "non-2xx or socket errors in the best rounds")
	}
	return nil
}

// runB3: the load balancer with its traffic accounting on and off (same
// binary, LB_TRAFFIC_STATS), throughput and CPU per request in alternating
// rounds; then the RSS of one load balancer at 100 and at 10,000 requests
// per second (open model).
func runB3(ctx context.Context, b *bench) error {
	be, err := startBackend(ctx)
	if err != nil {
		return err
	}
	defer be.Stop(5 * time.Second)
	on, err := startLB(ctx, b.bin, be.URL, true, true)
	if err != nil {
		return err
	}
	defer on.Stop(5 * time.Second)
	off, err := startLB(ctx, b.bin, be.URL, false, true)
	if err != nil {
		return err
	}
	rounds, d := 4, 5*time.Second
	if b.quick {
		rounds, d = 1, time.Second
	}
	m, err := roundRobin(ctx, b, []string{"stats on", "stats off"},
		[]string{on.URL + "/api/bench", off.URL + "/api/bench"}, []int{on.Pid(), off.Pid()}, rounds, d)
	off.Stop(5 * time.Second)
	if err != nil {
		return err
	}
	mOn, mOff := m["stats on"], m["stats off"]
	if mOff.best.RPS == 0 || mOff.cpuPerReq == 0 {
		return fmt.Errorf("stats-off LB served nothing")
	}
	costRPS := (1 - mOn.best.RPS/mOff.best.RPS) * 100
	b.rep.AddTarget("B3", "traffic stats cost (throughput)", costRPS, "%", false, 3,
		fmt.Sprintf("on %.0f vs off %.0f req/s (best of %d; rounds on %s, off %s)", mOn.best.RPS, mOff.best.RPS, rounds, fmtRPS(mOn.roundsRPS), fmtRPS(mOff.roundsRPS)))
	costCPU := (float64(mOn.cpuPerReq)/float64(mOff.cpuPerReq) - 1) * 100
	b.rep.Add("B3", "traffic stats cost (LB CPU per request)", costCPU, "%",
		fmt.Sprintf("on %.1f µs vs off %.1f µs (least of %d rounds; 10 ms tick resolution)", float64(mOn.cpuPerReq)/1e3, float64(mOff.cpuPerReq)/1e3, rounds))

	// RSS: a fresh LB with stats on, at 100 then at 10,000 requests/s.
	lb, err := startLB(ctx, b.bin, be.URL, true, true)
	if err != nil {
		return err
	}
	defer lb.Stop(5 * time.Second)
	low, high := 100, 10000
	dur := b.step(6*time.Second, 2*time.Second)
	if b.quick {
		high = 2000
	}
	target := func(_ uint64, t *vegeta.Target) { loadgen.Get(t, lb.URL+"/api/bench") }
	// The same 64 connections at both rates: what is compared is the memory
	// a request rate costs, not the memory of more sockets.
	rLow := loadgen.Open(ctx, loadgen.Spec{Rate: low, Duration: dur, MaxConns: 64}, target, nil)
	rssLow, err := procStatusKB(lb.Pid(), "VmRSS")
	if err != nil {
		return err
	}
	rHigh := loadgen.Open(ctx, loadgen.Spec{Rate: high, Duration: dur, MaxConns: 64}, target, nil)
	rssHigh, err := procStatusKB(lb.Pid(), "VmRSS")
	if err != nil {
		return err
	}
	hwm, _ := procStatusKB(lb.Pid(), "VmHWM")
	b.logf("RSS %d kB at %d/s (achieved %.0f), %d kB at %d/s (achieved %.0f, errors %d, p99 %.2f ms), peak %d kB",
		rssLow, low, rLow.Achieved, rssHigh, high, rHigh.Achieved, rHigh.Errors, report.Ms(rHigh.P99), hwm)
	b.rep.Add("B3", fmt.Sprintf("LB RSS at %d req/s", low), float64(rssLow)/1024, "MiB", fmt.Sprintf("achieved %.0f/s", rLow.Achieved))
	b.rep.Add("B3", fmt.Sprintf("LB RSS at %d req/s", high), float64(rssHigh)/1024, "MiB",
		fmt.Sprintf("achieved %.0f/s, errors %d, p99 %.2f ms, peak RSS %.1f MiB", rHigh.Achieved, rHigh.Errors, report.Ms(rHigh.P99), float64(hwm)/1024))
	b.rep.AddTarget("B3", fmt.Sprintf("LB RSS %d vs %d req/s", high, low), float64(rssHigh)/float64(rssLow), "×", false, 1.5, "flat: the window is O(1) memory")
	return nil
}

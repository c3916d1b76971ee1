package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

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
	cost       cpuCost       // the best round's CPU per request, by process
	cpuPerReq  time.Duration // the proxy's, least over rounds
	roundsRPS  []float64
	cpuPerReqs []time.Duration
}

// wrkTarget is one URL measured with wrk: the proxy's processes (none for
// the backend measured directly) and the others it charges per request.
type wrkTarget struct {
	name, url string
	proxy     []int
	others    []cpuGroup // e.g. the backend behind it
}

// roundRobin measures each target with wrk in turn, rounds times, so that
// a burst of other work on the machine hits every target alike; each gets
// its best round (max throughput is what the machine allows when least
// disturbed), with that round's CPU per request for the proxy, the other
// processes and wrk itself.
func roundRobin(ctx context.Context, b *bench, targets []wrkTarget, rounds int, d time.Duration) (map[string]*measured, error) {
	out := map[string]*measured{}
	for _, t := range targets {
		out[t.name] = &measured{}
	}
	// A short warm-up of each: connection pools, page faults, JIT-free but
	// not cache-free.
	for _, t := range targets {
		if _, err := loadgen.RunWrk(ctx, t.url, wrkThreads, wrkConns, time.Second); err != nil {
			return nil, err
		}
	}
	for r := 0; r < rounds; r++ {
		for _, t := range targets {
			var groups []cpuGroup
			if len(t.proxy) > 0 {
				groups = append(groups, cpuGroup{"proxy", t.proxy})
			}
			groups = append(groups, t.others...)
			c0 := sampleCPU(groups)
			w, err := loadgen.RunWrk(ctx, t.url, wrkThreads, wrkConns, d)
			if err != nil {
				return nil, err
			}
			cost := costBetween(groups, c0, sampleCPU(groups), w.Requests, cpuSpent{"wrk", w.CPU})
			m := out[t.name]
			m.roundsRPS = append(m.roundsRPS, w.RPS)
			if w.RPS > m.best.RPS {
				m.best, m.cost = w, cost
			}
			if per := cost.perReq["proxy"]; len(t.proxy) > 0 && w.Requests > 0 {
				m.cpuPerReqs = append(m.cpuPerReqs, per)
				if m.cpuPerReq == 0 || per < m.cpuPerReq {
					m.cpuPerReq = per
				}
			}
			b.logf("round %d %-18s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  CPU %s", r+1, t.name, w.RPS, report.Ms(w.P50), report.Ms(w.P99), w.Errors, cost)
		}
	}
	return out, nil
}

// pairedMedian is the median of a[i]/b[i].
func pairedMedian(a, b []float64) float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	if len(r) == 0 {
		return 0
	}
	slices.Sort(r)
	if len(r)%2 == 1 {
		return r[len(r)/2]
	}
	return (r[len(r)/2-1] + r[len(r)/2]) / 2
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
	// The same front on one thread: no idle P spinning for work and no
	// wake-ups between threads, at the price of one core at most.
	one, err := startLB(ctx, b.bin, be.URL, true, true, "GOMAXPROCS", "1")
	if err != nil {
		return err
	}
	defer one.Stop(5 * time.Second)
	// The same front with the Go runtime's own socket calls (platform/sockio
	// off): what the raw reads and writes save.
	rt, err := startLB(ctx, b.bin, be.URL, true, true, "RAW_SOCKET_IO", "false")
	if err != nil {
		return err
	}
	defer rt.Stop(5 * time.Second)
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
	oneName := "LB GOMAXPROCS=1"
	rtName := "LB RAW_SOCKET_IO=false"
	backend := []cpuGroup{{"backend", []int{be.Pid()}}}
	m, err := roundRobin(ctx, b, []wrkTarget{
		{"load-balancer", lb.URL + "/api/bench", []int{lb.Pid()}, backend},
		{"nginx", ng.URL + "/api/bench", append([]int{ng.Pid()}, childPids(ng.Pid())...), backend},
		{slowName, slow.URL + "/api/bench", []int{slow.Pid()}, backend},
		{oneName, one.URL + "/api/bench", []int{one.Pid()}, backend},
		{rtName, rt.URL + "/api/bench", []int{rt.Pid()}, backend},
		{stockName, stock.URL + "/api/bench", []int{stock.Pid()}, backend},
		{direct, be.URL + "/api/bench", nil, backend},
	}, rounds, d)
	if err != nil {
		return err
	}
	// Where the CPU went in each one's best round: with the machine fully
	// busy, throughput is the cores divided by the sum of CPU per request.
	cpuTbl := cpuTable("B2 CPU per request in each best round (µs; proxy, backend, wrk; other = busy time outside them)", []string{"target", "req/s"}, m["load-balancer"].cost)
	for _, n := range []string{"load-balancer", rtName, oneName, "nginx", slowName, stockName} {
		cpuTbl.Rows = append(cpuTbl.Rows, m[n].cost.row(n, fmt.Sprintf("%.0f", m[n].best.RPS)))
	}
	b.rep.Detail("B2 CPU", cpuTbl)
	l, n := m["load-balancer"], m["nginx"]
	if n.best.RPS == 0 {
		return fmt.Errorf("nginx served nothing")
	}
	note := fmt.Sprintf("wrk -t%d -c%d, best of %d rounds of %s", wrkThreads, wrkConns, rounds, d)
	b.rep.Add("B2", "LB max throughput", l.best.RPS, "req/s", fmt.Sprintf("fasthttp front; rounds %s; p99 %.2f ms; errors %d", fmtRPS(l.roundsRPS), report.Ms(l.best.P99), l.best.Errors))
	b.rep.Add("B2", "nginx max throughput", n.best.RPS, "req/s", fmt.Sprintf("rounds %s; p99 %.2f ms; errors %d", fmtRPS(n.roundsRPS), report.Ms(n.best.P99), n.best.Errors))
	sl := m[slowName]
	b.rep.Add("B2", "LB on its net/http chain (LB_FAST_PATH=false)", sl.best.RPS, "req/s", fmt.Sprintf("rounds %s; LB CPU %.1f µs/req vs %.1f with the fasthttp front", fmtRPS(sl.roundsRPS), us(sl.cpuPerReq), us(l.cpuPerReq)))
	o := m[oneName]
	b.rep.Add("B2", "LB with GOMAXPROCS=1", o.best.RPS, "req/s", fmt.Sprintf("rounds %s; LB CPU %.1f µs/req vs %.1f with Go's default (%.2f× nginx, median of pairs %.2f×)",
		fmtRPS(o.roundsRPS), us(o.cpuPerReq), us(l.cpuPerReq), o.best.RPS/n.best.RPS, pairedMedian(o.roundsRPS, n.roundsRPS)))
	r := m[rtName]
	b.rep.Add("B2", "LB with the runtime's socket calls (RAW_SOCKET_IO=false)", r.best.RPS, "req/s", fmt.Sprintf("rounds %s; LB CPU %.1f µs/req vs %.1f with raw socket calls (%.2f× nginx, median of pairs %.2f×)",
		fmtRPS(r.roundsRPS), us(r.cpuPerReq), us(l.cpuPerReq), r.best.RPS/n.best.RPS, pairedMedian(r.roundsRPS, n.roundsRPS)))
	st := m[stockName]
	b.rep.Add("B2", "stock ReverseProxy max throughput", st.best.RPS, "req/s", fmt.Sprintf("httputil.NewSingleHostReverseProxy, 256 idle conns; rounds %s", fmtRPS(st.roundsRPS)))
	b.rep.Add("B2", "backend direct (no proxy)", m[direct].best.RPS, "req/s", "ceiling for both")
	if st.best.RPS > 0 {
		b.rep.Add("B2", "LB / stock ReverseProxy throughput", l.best.RPS/st.best.RPS, "×", "what the LB's proxy path gains over net/http's stock proxy")
		b.rep.Add("B2", "stock ReverseProxy / nginx throughput", st.best.RPS/n.best.RPS, "×", "the baseline's own gap to nginx here")
	}
	b.rep.AddTarget("B2", "LB / nginx throughput", l.best.RPS/n.best.RPS, "×", true, 0.7, note)
	b.rep.Add("B2", "LB / nginx throughput, median of paired rounds", pairedMedian(l.roundsRPS, n.roundsRPS), "×",
		"each round's LB figure over the nginx round right after it: a burst of other work spoils a pair, not the figure")
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
	backend := []cpuGroup{{"backend", []int{be.Pid()}}}
	m, err := roundRobin(ctx, b, []wrkTarget{
		{"stats on", on.URL + "/api/bench", []int{on.Pid()}, backend},
		{"stats off", off.URL + "/api/bench", []int{off.Pid()}, backend},
	}, rounds, d)
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
	target := loadgen.Op{Name: "bench", Target: loadgen.Request(http.MethodGet, lb.URL+"/api/bench", nil)}
	// The same 64 connections at both rates: what is compared is the memory
	// a request rate costs, not the memory of more sockets.
	rLow := loadgen.Run(ctx, loadgen.Spec{Rate: low, Duration: dur, MaxConns: 64}, target)
	rssLow, err := procStatusKB(lb.Pid(), "VmRSS")
	if err != nil {
		return err
	}
	rHigh := loadgen.Run(ctx, loadgen.Spec{Rate: high, Duration: dur, MaxConns: 64}, target)
	_, _, highFailed := rHigh.Totals()
	rssHigh, err := procStatusKB(lb.Pid(), "VmRSS")
	if err != nil {
		return err
	}
	hwm, _ := procStatusKB(lb.Pid(), "VmHWM")
	b.logf("RSS %d kB at %d/s (achieved %.0f), %d kB at %d/s (achieved %.0f, errors %d, p99 %.2f ms), peak %d kB",
		rssLow, low, rLow.Achieved, rssHigh, high, rHigh.Achieved, highFailed, report.Ms(rHigh.Percentile(99)), hwm)
	b.rep.Add("B3", fmt.Sprintf("LB RSS at %d req/s", low), float64(rssLow)/1024, "MiB", fmt.Sprintf("achieved %.0f/s", rLow.Achieved))
	b.rep.Add("B3", fmt.Sprintf("LB RSS at %d req/s", high), float64(rssHigh)/1024, "MiB",
		fmt.Sprintf("achieved %.0f/s, errors %d, p99 %.2f ms, peak RSS %.1f MiB", rHigh.Achieved, highFailed, report.Ms(rHigh.Percentile(99)), float64(hwm)/1024))
	b.rep.AddTarget("B3", fmt.Sprintf("LB RSS %d vs %d req/s", high, low), float64(rssHigh)/float64(rssLow), "×", false, 1.5, "flat: the window is O(1) memory")
	return nil
}

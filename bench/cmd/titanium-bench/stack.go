package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"titanium/bench/loadgen"
	"titanium/bench/report"
	"titanium/devstack"
)

// client is for set-up calls and /stats probes; every call has a timeout.
var client = &http.Client{Timeout: 10 * time.Second}

// call sends a JSON request and decodes a JSON answer into out (may be nil).
func call(ctx context.Context, method, url, auth string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, err
		}
	}
	code, data, err := fetch(ctx, method, url, auth, body)
	if err != nil {
		return code, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return code, fmt.Errorf("%s %s: decode %d %q: %w", method, url, code, data, err)
		}
	}
	return code, nil
}

// fetch sends a request (a JSON body when body is not nil) and returns the
// status and the whole answer.
func fetch(ctx context.Context, method, url, auth string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// loginUser registers a fresh user through the LB and returns its bearer
// header.
func loginUser(ctx context.Context, lb string) (string, error) {
	name := fmt.Sprintf("bench%d", time.Now().UnixNano()%1e12)
	pw := "Bench-password-1234"
	code, err := call(ctx, http.MethodPost, lb+"/api/users", "", map[string]string{"username": name, "email": name + "@example.com", "password": pw}, nil)
	if err != nil || code != http.StatusCreated {
		return "", fmt.Errorf("register: %d %v", code, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	code, err = call(ctx, http.MethodPost, lb+"/api/auth/login", "", map[string]string{"username": name, "password": pw}, &tok)
	if err != nil || code != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("login: %d %v", code, err)
	}
	return "Bearer " + tok.AccessToken, nil
}

// b1Load is B1's load on one stack: the mix of requests, and the processes
// whose CPU it charges.
type b1Load struct {
	mix    []loadgen.Op
	groups []cpuGroup
}

// prepareB1 logs in, seeds 200 posts (enough that details are not one
// cached row) and builds the mix for stack s.
func prepareB1(ctx context.Context, s *devstack.Stack) (*b1Load, error) {
	lb := s.LB()
	auth, err := loginUser(ctx, lb)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for i := 0; i < 200; i++ {
		var p struct {
			ID int64 `json:"id"`
		}
		code, err := call(ctx, http.MethodPost, lb+"/api/posts", auth, map[string]string{"title": fmt.Sprintf("bench seed %d", i), "content": strings.Repeat("Seed post content. ", 10)}, &p)
		if err != nil || code != http.StatusCreated {
			return nil, fmt.Errorf("seed post: %d %v", code, err)
		}
		ids = append(ids, p.ID)
	}
	body := []byte(`{"title":"bench post","content":"Created by the mixed-load benchmark."}`)
	l := &b1Load{mix: []loadgen.Op{
		{Name: "list", Weight: 16, Target: loadgen.Request(http.MethodGet, lb+"/api/posts?limit=20", nil)},
		{Name: "detail", Weight: 3, Target: func(t *loadgen.Target) {
			t.Method, t.URL = http.MethodGet, fmt.Sprintf("%s/api/posts/%d", lb, ids[rand.IntN(len(ids))])
		}},
		{Name: "create", Weight: 1, Target: loadgen.Request(http.MethodPost, lb+"/api/posts", body,
			"Authorization", auth, "Content-Type", "application/json")},
	}}
	// CPU per request of every process on the path, and of the generator
	// (vegeta runs in this process).
	for _, name := range []string{"load-balancer", "api-gateway", "blog-service"} {
		var pids []int
		for _, p := range s.Instances(name) {
			pids = append(pids, p.Pid())
		}
		l.groups = append(l.groups, cpuGroup{name, pids})
	}
	l.groups = append(l.groups, cpuGroup{"generator", []int{os.Getpid()}})
	return l, nil
}

// step sends the mix at rate for d and measures what it cost.
func (l *b1Load) step(ctx context.Context, rate int, d time.Duration) (*loadgen.Result, cpuCost) {
	c0 := sampleCPU(l.groups)
	r := loadgen.Run(ctx, loadgen.Spec{Rate: rate, Duration: d}, l.mix...)
	sent, _, _ := r.Totals()
	return r, costBetween(l.groups, c0, sampleCPU(l.groups), int(sent))
}

// b1P99Limit is B1's latency bound for a held rate.
const b1P99Limit = 50 * time.Millisecond

// b1Held: no error, p99 under the limit, and the generator really sent at
// the rate (a lagging generator would flatter the server).
func b1Held(r *loadgen.Result, rate int) bool {
	_, _, failed := r.Totals()
	return failed == 0 && r.Percentile(99) < b1P99Limit && r.Achieved >= 0.97*float64(rate)
}

// runB1: the seed's mixed load at rising rates through the whole stack,
// then the runtime settings compared at one rate below the highest held.
func runB1(ctx context.Context, b *bench) error {
	load, err := prepareB1(ctx, b.stack)
	if err != nil {
		return err
	}
	rates := []int{250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000}
	stepDur := 10 * time.Second
	if b.quick {
		rates, stepDur = []int{50, 100}, 2*time.Second
	}
	if len(b.rates) > 0 {
		rates = b.rates
	}
	if !b.quick {
		// Warm-up: connection pools and SQLite's page cache.
		loadgen.Run(ctx, loadgen.Spec{Rate: 200, Duration: 3 * time.Second}, load.mix...)
	}
	tbl := &report.Table{Title: "B1 steps (open model, list:detail:create = 16:3:1, via LB → gateway → blog-service)",
		Columns: []string{"rate/s", "try", "achieved/s", "sent", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms", "list p99", "detail p99", "create p99", "held"}}
	var cpuTbl, kernTbl *report.Table
	best, failedRate := 0, 0
	var bestRes, failedRes *loadgen.Result
	var bestCost cpuCost
	for _, rate := range rates {
		if ctx.Err() != nil {
			break
		}
		// A step that fails is run once more before the search stops: on a
		// shared 2-core machine one burst of other work can spoil a p99.
		held := false
		var r *loadgen.Result
		var cost cpuCost
		for attempt := 1; attempt <= 2 && !held && ctx.Err() == nil; attempt++ {
			r, cost = load.step(ctx, rate, stepDur)
			if cpuTbl == nil {
				lead := []string{"rate/s", "try"}
				cpuTbl = cpuTable("B1 CPU per request by step (µs, from /proc; other = machine busy time outside these processes)", lead, cost)
				kernTbl = kernelTable("B1 kernel entries per request by step: read syscalls / write syscalls / context switches (from /proc)", lead, cost)
			}
			cpuTbl.Rows = append(cpuTbl.Rows, cost.row(fmt.Sprint(rate), fmt.Sprint(attempt)))
			kernTbl.Rows = append(kernTbl.Rows, cost.kernelRow(fmt.Sprint(rate), fmt.Sprint(attempt)))
			held = b1Held(r, rate)
			tbl.Rows = append(tbl.Rows, b1Row(rate, attempt, r, held))
			_, _, failed := r.Totals()
			b.logf("%5d/s (try %d): achieved %.0f, errors %d, p50 %.1f ms, p99 %.1f ms, held %v %s; CPU %s", rate, attempt, r.Achieved, failed, report.Ms(r.Percentile(50)), report.Ms(r.Percentile(99)), held, r.Status(), cost)
			// Let the write queue and the WAL settle between steps.
			time.Sleep(time.Second)
		}
		if !held {
			failedRate, failedRes = rate, r
			break
		}
		best, bestRes, bestCost = rate, r, cost
	}
	b.rep.Detail("B1", tbl)
	if cpuTbl != nil {
		b.rep.Detail("B1 CPU", cpuTbl)
		b.rep.Detail("B1 kernel", kernTbl)
	}
	target := 2000.0
	if b.quick {
		target = 100
	}
	note := "no step held"
	if best > 0 {
		note = fmt.Sprintf("%.0fx the seed's 100 RPS; at it p50 %.1f / p95 %.1f / p99 %.1f ms", float64(best)/100,
			report.Ms(bestRes.Percentile(50)), report.Ms(bestRes.Percentile(95)), report.Ms(bestRes.Percentile(99)))
	}
	b.rep.AddTarget("B1", "highest rate held (0 errors, p99 < 50 ms)", float64(best), "req/s", true, target, note)
	if failedRate > 0 {
		_, _, failed := failedRes.Totals()
		b.rep.Add("B1", "first rate not held", float64(failedRate), "req/s", fmt.Sprintf("achieved %.0f/s, errors %d, p99 %.1f ms", failedRes.Achieved, failed, report.Ms(failedRes.Percentile(99))))
	}
	if best == 0 {
		return nil
	}
	cores := runtime.NumCPU()
	lim := bestCost.limit(cores)
	b.rep.Add("B1", "CPU per request at the highest held rate", us(bestCost.sum), "µs", bestCost.String())
	b.rep.Add("B1", fmt.Sprintf("machine limit (%d cores ÷ CPU per request)", cores), lim, "req/s",
		fmt.Sprintf("the highest held rate is %.0f%% of it", 100*float64(best)/lim))
	// The runtime settings, each on a fresh stack, at a rate every one of
	// them should hold: a step that falls over costs more per request
	// whatever the setting.
	rate := max(250, best*4/5/250*250)
	if b.quick {
		rate = best
	}
	return runB1Runtime(ctx, b, rate, stepDur)
}

// runtimeVariant is one set of Go runtime settings for B1's processes.
type runtimeVariant struct {
	name string
	env  map[string]map[string]string // service → variables
	// genProcs is the generator's GOMAXPROCS (0: the runtime's default).
	genProcs int
}

// servicesEnv sets the same variables (key, value pairs) on the three
// services B1's requests pass through.
func servicesEnv(kv ...string) map[string]map[string]string {
	env := map[string]map[string]string{}
	for _, svc := range []string{"load-balancer", "api-gateway", "blog-service"} {
		env[svc] = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			env[svc][kv[i]] = kv[i+1]
		}
	}
	return env
}

var b1Variants = []runtimeVariant{
	{name: "defaults"},
	{name: "RAW_SOCKET_IO=false (LB, gateway, blog)", env: servicesEnv("RAW_SOCKET_IO", "false")},
	{name: "GOGC=400 (LB, gateway, blog)", env: servicesEnv("GOGC", "400")},
	{name: "GOGC=off GOMEMLIMIT=64MiB (LB, gateway, blog)", env: servicesEnv("GOGC", "off", "GOMEMLIMIT", "64MiB")},
	{name: "GOMAXPROCS=1 (gateway)", env: map[string]map[string]string{"api-gateway": {"GOMAXPROCS": "1"}}},
	{name: "GOMAXPROCS=1 (LB, gateway, blog)", env: servicesEnv("GOMAXPROCS", "1")},
	// The generator is not the system, but it shares the cores.
	{name: "generator GOMAXPROCS=1", genProcs: 1},
}

// runB1Runtime measures B1's mix at one rate under each runtime variant,
// each on a fresh stack: CPU per request by process, kernel entries, p99.
func runB1Runtime(ctx context.Context, b *bench, rate int, stepDur time.Duration) error {
	variants := b1Variants
	if b.quick {
		variants = variants[:2]
	}
	var cpuTbl, kernTbl *report.Table
	var base float64
	for i, v := range variants {
		if ctx.Err() != nil {
			break
		}
		r, cost, err := b1Variant(ctx, b, fmt.Sprintf("runtime%d", i), v, rate, stepDur)
		if err != nil {
			return fmt.Errorf("runtime %q: %w", v.name, err)
		}
		held := b1Held(r, rate)
		p99 := fmt.Sprintf("%.1f", report.Ms(r.Percentile(99)))
		if cpuTbl == nil {
			lead := []string{"settings", "p99 ms", "held"}
			cpuTbl = cpuTable(fmt.Sprintf("B1 runtime settings at %d req/s, each on a fresh stack: CPU per request (µs)", rate), lead, cost)
			kernTbl = kernelTable(fmt.Sprintf("B1 runtime settings at %d req/s: read syscalls / write syscalls / context switches per request", rate), lead[:1], cost)
		}
		cpuTbl.Rows = append(cpuTbl.Rows, cost.row(v.name, p99, fmt.Sprint(held)))
		kernTbl.Rows = append(kernTbl.Rows, cost.kernelRow(v.name))
		b.logf("runtime %-45s at %d/s: p99 %s ms, held %v; CPU %s", v.name, rate, p99, held, cost)
		if i == 0 {
			base = us(cost.sum)
		}
		note := fmt.Sprintf("p99 %s ms, held %v; %s", p99, held, cost)
		if i > 0 && base > 0 {
			note = fmt.Sprintf("%+.0f%% against the defaults; ", 100*(us(cost.sum)/base-1)) + note
		}
		b.rep.Add("B1", "CPU per request, "+v.name, us(cost.sum), "µs", note)
	}
	if cpuTbl != nil {
		b.rep.Detail("B1 runtime", cpuTbl)
		b.rep.Detail("B1 runtime kernel", kernTbl)
	}
	return nil
}

// b1Variant runs one runtime variant: a fresh stack with its settings, a
// warm-up rising to half the rate, then one step at the rate (a second
// one when the first does not hold, as in the ladder).
func b1Variant(ctx context.Context, b *bench, name string, v runtimeVariant, rate int, d time.Duration) (*loadgen.Result, cpuCost, error) {
	if v.genProcs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(v.genProcs))
	}
	s, err := b.newStack(ctx, name, v.env)
	if err != nil {
		return nil, cpuCost{}, err
	}
	defer s.Stop(10 * time.Second)
	load, err := prepareB1(ctx, s)
	if err != nil {
		return nil, cpuCost{}, err
	}
	warm := b.step(3*time.Second, time.Second)
	loadgen.Run(ctx, loadgen.Spec{Rate: 200, Duration: warm}, load.mix...)
	loadgen.Run(ctx, loadgen.Spec{Rate: rate / 2, Duration: warm}, load.mix...)
	var r *loadgen.Result
	var cost cpuCost
	for attempt := 1; attempt <= 2 && ctx.Err() == nil; attempt++ {
		r, cost = load.step(ctx, rate, d)
		if b1Held(r, rate) {
			break
		}
		time.Sleep(time.Second)
	}
	return r, cost, nil
}

// b1Row is one line of B1's step table.
func b1Row(rate, attempt int, r *loadgen.Result, held bool) []string {
	kp99 := func(k string) string {
		if s := r.Ops[k]; s != nil && s.Sent > 0 {
			return fmt.Sprintf("%.1f", report.Ms(s.Percentile(99)))
		}
		return "-"
	}
	verdict := "yes"
	if !held {
		verdict = "no"
		if st := r.Status(); st != "" {
			// Codes only: the error samples are in the progress log.
			st, _, _ = strings.Cut(st, " (")
			verdict += ": " + st
		}
	}
	sent, _, failed := r.Totals()
	return []string{fmt.Sprint(rate), fmt.Sprint(attempt), fmt.Sprintf("%.0f", r.Achieved), fmt.Sprint(sent), fmt.Sprint(failed),
		fmt.Sprintf("%.1f", report.Ms(r.Percentile(50))), fmt.Sprintf("%.1f", report.Ms(r.Percentile(95))), fmt.Sprintf("%.1f", report.Ms(r.Percentile(99))),
		fmt.Sprintf("%.0f", report.Ms(r.Percentile(100))), kp99("list"), kp99("detail"), kp99("create"), verdict}
}

// lbStats is the part of the LB's /stats that B5 reads.
type lbStats struct {
	Status   string `json:"status"`
	Services []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"services"`
}

func (s lbStats) service(name string) string {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv.Status
		}
	}
	return "missing"
}

// statsCalls counts GET /stats requests a service has served (from its
// Prometheus counter): the LB's fan-outs reaching it.
func statsCalls(ctx context.Context, base string) (float64, error) {
	_, data, err := fetch(ctx, http.MethodGet, base+"/metrics", "", nil)
	if err != nil {
		return 0, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("%s/metrics: %w", base, err)
	}
	total := 0.0
	for _, m := range families["http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == "GET /stats" {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total, nil
}

// timeStats times one GET /stats on the LB.
func timeStats(ctx context.Context, lb string) (time.Duration, lbStats, error) {
	var st lbStats
	t0 := time.Now()
	code, err := call(ctx, http.MethodGet, lb+"/stats", "", nil, &st)
	d := time.Since(t0)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("/stats: HTTP %d", code)
	}
	return d, st, err
}

// runB5: /stats latency (back to back, and fresh fan-outs spaced past the
// LB's answer cache), shared fan-out under concurrent callers, and /stats
// with blog-service hung (SIGSTOP).
func runB5(ctx context.Context, b *bench) error {
	lb := b.stack.LB()
	// Past the LB's /stats cache (LB_STATS_CACHE, 250 ms by default).
	const fresh = 400 * time.Millisecond
	n := 200
	if b.quick {
		n = 20
	}
	var lats []time.Duration
	for i := 0; i < n; i++ {
		d, _, err := timeStats(ctx, lb)
		if err != nil {
			return err
		}
		lats = append(lats, d)
	}
	slices.Sort(lats)
	b.rep.Add("B5", "/stats p50, back to back", report.Ms(report.Percentile(lats, 50)), "ms", fmt.Sprintf("%d sequential calls; p99 %.2f ms", n, report.Ms(report.Percentile(lats, 99))))
	nf := 10
	if b.quick {
		nf = 3
	}
	var fl []time.Duration
	for i := 0; i < nf; i++ {
		time.Sleep(fresh)
		d, _, err := timeStats(ctx, lb)
		if err != nil {
			return err
		}
		fl = append(fl, d)
	}
	slices.Sort(fl)
	b.rep.Add("B5", "/stats p50, fresh fan-out", report.Ms(report.Percentile(fl, 50)), "ms", fmt.Sprintf("%d calls %v apart; max %.2f ms", nf, fresh, report.Ms(fl[len(fl)-1])))

	// Shared fan-out: N concurrent callers; count the /stats requests that
	// reached one target (dashboard-ui) meanwhile.
	const callers = 50
	target := b.stack.URL("dashboard-ui")
	time.Sleep(fresh)
	c0, err := statsCalls(ctx, target)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	t0 := time.Now()
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := timeStats(ctx, lb); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	c1, err := statsCalls(ctx, target)
	if err != nil {
		return err
	}
	b.rep.AddTarget("B5", fmt.Sprintf("fan-outs for %d concurrent /stats callers", callers), c1-c0, "", false, 2,
		fmt.Sprintf("GET /stats reaching dashboard-ui; all answered in %.1f ms", report.Ms(wall)))

	// One service hung: SIGSTOP blog-service, always SIGCONT after.
	blog := b.stack.Proc("blog-service")
	if err := blog.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = blog.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	time.Sleep(fresh)
	d, st, err := timeStats(ctx, lb)
	resume()
	if err != nil {
		return err
	}
	b.rep.AddTarget("B5", "/stats with blog-service hung", d.Seconds(), "s", false, 2.1,
		fmt.Sprintf("blog-service reported %s, overall %s", st.service("blog-service"), st.Status))
	// Back to normal before anything else runs on this stack.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(fresh)
		if _, st, err := timeStats(ctx, lb); err == nil && st.service("blog-service") == "ONLINE" {
			break
		}
	}
	return nil
}

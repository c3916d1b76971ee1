// Package loadgen drives load for the benchmark: open-model constant
// arrival rate through vegeta's library (requests start on the clock
// whether or not earlier ones finished, so a slow server shows up as
// latency rather than as a lower rate), and closed-loop maximum throughput
// through wrk for the proxy comparisons.
package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"titanium/bench/report"
)

// Result summarises one open-model run.
type Result struct {
	Rate      int                    // requested requests per second
	Duration  time.Duration          // requested duration
	Sent      int                    // requests started
	OK        int                    // 2xx answers
	Errors    int                    // everything else (transport errors included)
	Achieved  float64                // requests started per second, measured
	P50, P95  time.Duration          // latency of all answers
	P99, Max  time.Duration          //
	ByCode    map[int]int            // status code → count (0: transport error)
	ErrSample []string               // a few distinct error texts
	ByName    map[string]*NamedStats // per target kind (list/detail/create)
}

// NamedStats are latencies of one kind of request in a mixed run.
type NamedStats struct {
	Count, Errors int
	P50, P99      time.Duration
}

// Targeter builds the i-th request of a run (i counts from 0; vegeta calls
// it from many workers at once, each i once) and returns its kind, the name
// it is reported under.
type Targeter func(i uint64, t *vegeta.Target)

// Kind names a request in the per-kind breakdown (e.g. list/detail/create).
type Kind func(method, url string) string

// Spec is one open-model run.
type Spec struct {
	Rate     int           // requests started per second
	Duration time.Duration // how long
	Timeout  time.Duration // per request (default 5 s)
	// MaxConns caps connections to the target (0: as many as the load
	// needs). A cap makes requests queue in the client when all are busy.
	MaxConns int
}

// Open runs tr at spec.Rate requests per second for spec.Duration (open
// model); kind may be nil.
func Open(ctx context.Context, spec Spec, tr Targeter, kind Kind) Result {
	rate, d := spec.Rate, spec.Duration
	if spec.Timeout == 0 {
		spec.Timeout = 5 * time.Second
	}
	opts := []func(*vegeta.Attacker){
		vegeta.Timeout(spec.Timeout),
		vegeta.KeepAlive(true),
		vegeta.Workers(64),
		// Workers are added when all are busy: a high cap keeps the model
		// open (a slow answer never delays the next start).
		vegeta.MaxWorkers(20000),
		vegeta.Connections(10000),
		vegeta.HTTP2(false),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if spec.MaxConns > 0 {
		opts = append(opts, vegeta.MaxConnections(spec.MaxConns))
	}
	atk := vegeta.NewAttacker(opts...)
	var seq uint64
	targeter := func(t *vegeta.Target) error {
		tr(nextSeq(&seq), t)
		return nil
	}
	if kind == nil {
		kind = func(string, string) string { return "all" }
	}
	res := Result{Rate: rate, Duration: d, ByCode: map[int]int{}, ByName: map[string]*NamedStats{}}
	var (
		lats     = make([]time.Duration, 0, rate*int(d/time.Second+1))
		perKind  = map[string][]time.Duration{}
		first    time.Time
		lastSent time.Time
		errSeen  = map[string]bool{}
	)
	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second}
	results := atk.Attack(targeter, pacer, d, "titanium-bench")
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	for r := range results {
		k := kind(r.Method, r.URL)
		res.Sent++
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if r.Timestamp.After(lastSent) {
			lastSent = r.Timestamp
		}
		code := int(r.Code)
		res.ByCode[code]++
		ns := res.ByName[k]
		if ns == nil {
			ns = &NamedStats{}
			res.ByName[k] = ns
		}
		ns.Count++
		if code >= 200 && code < 300 && r.Error == "" {
			res.OK++
		} else {
			res.Errors++
			ns.Errors++
			if len(errSeen) < 5 && !errSeen[r.Error] {
				errSeen[r.Error] = true
				res.ErrSample = append(res.ErrSample, fmt.Sprintf("%s %s: %d %s", r.Method, r.URL, code, r.Error))
			}
		}
		lats = append(lats, r.Latency)
		perKind[k] = append(perKind[k], r.Latency)
	}
	slices.Sort(lats)
	res.P50, res.P95 = report.Percentile(lats, 50), report.Percentile(lats, 95)
	res.P99 = report.Percentile(lats, 99)
	if len(lats) > 0 {
		res.Max = lats[len(lats)-1]
	}
	if span := lastSent.Sub(first); span > 0 && res.Sent > 1 {
		// Starts per second over the span of starts (n-1 gaps).
		res.Achieved = float64(res.Sent-1) / span.Seconds()
	}
	for k, l := range perKind {
		slices.Sort(l)
		res.ByName[k].P50, res.ByName[k].P99 = report.Percentile(l, 50), report.Percentile(l, 99)
	}
	return res
}

// Status is a short description of the run's errors, "" when there were none.
func (r Result) Status() string {
	if r.Errors == 0 {
		return ""
	}
	var parts []string
	codes := make([]int, 0, len(r.ByCode))
	for c := range r.ByCode {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		if c < 200 || c >= 300 {
			parts = append(parts, fmt.Sprintf("%d×%d", r.ByCode[c], c))
		}
	}
	s := strings.Join(parts, " ")
	if len(r.ErrSample) > 0 {
		s += " (" + r.ErrSample[0] + ")"
	}
	return s
}

// Get is a Targeter kind helper: a GET of url.
func Get(t *vegeta.Target, url string) {
	t.Method, t.URL, t.Body, t.Header = http.MethodGet, url, nil, nil
}

// Wrk is one closed-loop maximum-throughput measurement.
type Wrk struct {
	RPS        float64
	Requests   int
	Errors     int // socket errors + non-2xx/3xx
	P50, P99   time.Duration
	CPU        time.Duration // wrk's own user+system CPU time
	RawSummary string
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReqs    = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// RunWrk runs wrk with threads and conns against url for d.
func RunWrk(ctx context.Context, url string, threads, conns int, d time.Duration) (Wrk, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "5s", "--latency", url)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Wrk{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	w, err := ParseWrk(string(out))
	w.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return w, err
}

// ParseWrk reads wrk's text report.
func ParseWrk(out string) (Wrk, error) {
	w := Wrk{RawSummary: out}
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return w, fmt.Errorf("wrk output has no Requests/sec: %q", out)
	}
	w.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkReqs.FindStringSubmatch(out); m != nil {
		w.Requests, _ = strconv.Atoi(m[1])
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		w.Errors += n
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			w.Errors += n
		}
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			w.P50 = d
		} else {
			w.P99 = d
		}
	}
	return w, nil
}

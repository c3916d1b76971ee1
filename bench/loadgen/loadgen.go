// Package loadgen drives load for the benchmark and the whole-stack tests.
// Open-model runs go through vegeta's library: requests start on the clock
// whether or not earlier ones finished (so a slow server meets the same
// arrival rate, as real users are, and shows up as latency rather than as
// a lower rate), each with a timeout, every outcome recorded per kind of
// request. Closed-loop maximum throughput, for the proxy comparisons, goes
// through wrk.
package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"titanium/bench/report"
)

// Target is the request an Op sends: vegeta's target (method, URL, body,
// header).
type Target = vegeta.Target

// Op is one kind of request in a weighted mix.
type Op struct {
	// Name labels the kind in results ("list", "create", ...).
	Name string
	// Weight is the kind's share of the rate (default 1).
	Weight int
	// Target fills in one request (required). It is called from many
	// goroutines at once; a Header it sets may be shared by every request
	// (it is copied).
	Target func(t *Target)
	// OK decides success from the status (0: no answer, never a success);
	// nil means 2xx.
	OK func(status int) bool
	// Answer, when set, sees every answer's status and body, one at a time.
	Answer func(status int, body []byte)
}

// Request is an Op.Target for a fixed request with an optional body and
// headers (alternating key, value).
func Request(method, url string, body []byte, headers ...string) func(*Target) {
	var h http.Header
	for i := 0; i+1 < len(headers); i += 2 {
		if h == nil {
			h = http.Header{}
		}
		h.Add(headers[i], headers[i+1])
	}
	return func(t *Target) { t.Method, t.URL, t.Body, t.Header = method, url, body, h }
}

// Spec is one open-model run.
type Spec struct {
	Rate     int           // requests started per second, over all ops
	Duration time.Duration // how long requests start
	Timeout  time.Duration // per request (default 5 s)
	// MaxConns caps connections to the target (0: as many as the load
	// needs). A cap makes requests queue in the client when all are busy.
	MaxConns int
}

// Result is the outcome of a run.
type Result struct {
	Rate     int           // requested requests per second
	Duration time.Duration // requested duration
	Elapsed  time.Duration // from the start until the last answer
	Achieved float64       // requests started per second, measured
	Ops      map[string]*OpResult
	all      []time.Duration // every latency, sorted
}

// OpResult is the outcome of one kind of request.
type OpResult struct {
	Name      string
	Sent      int64
	OK        int64
	Failed    int64
	Statuses  map[int]int64    // status → count (0: no answer)
	Errors    map[string]int64 // a few distinct failure messages, counted
	latencies []time.Duration  // sorted
}

// opHeader carries a request's op from the targeter to the transport. The
// transport removes it, and vegeta's own X-Vegeta-* headers: the server sees
// the request as the op made it.
const opHeader = "X-Loadgen-Op"

// opTransport learns which op each of vegeta's requests is (vegeta numbers
// them in X-Vegeta-Seq; its results carry the number back).
type opTransport struct {
	base *http.Transport
	mu   sync.Mutex
	op   map[string]int // X-Vegeta-Seq → op index
}

func (t *opTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if op, err := strconv.Atoi(req.Header.Get(opHeader)); err == nil {
		t.mu.Lock()
		t.op[req.Header.Get("X-Vegeta-Seq")] = op
		t.mu.Unlock()
		req = req.Clone(req.Context())
		for _, h := range []string{opHeader, "X-Vegeta-Seq", "X-Vegeta-Attack"} {
			req.Header.Del(h)
		}
	}
	return t.base.RoundTrip(req)
}

// take returns (and forgets) the op of vegeta's request seq, -1 when the
// request never reached the transport.
func (t *opTransport) take(seq uint64) int {
	key := strconv.FormatUint(seq, 10)
	t.mu.Lock()
	defer t.mu.Unlock()
	op, ok := t.op[key]
	if !ok {
		return -1
	}
	delete(t.op, key)
	return op
}

// Run sends ops at spec.Rate requests per second, split by weight in a
// repeating sequence, for spec.Duration (open model), then waits for the
// requests in flight (each bounded by the timeout). When ctx ends, no more
// requests start.
func Run(ctx context.Context, spec Spec, ops ...Op) *Result {
	if spec.Timeout <= 0 {
		spec.Timeout = 5 * time.Second
	}
	res := &Result{Rate: spec.Rate, Duration: spec.Duration, Ops: map[string]*OpResult{}}
	var schedule []int
	for i, op := range ops {
		res.Ops[op.Name] = &OpResult{Name: op.Name, Statuses: map[int]int64{}, Errors: map[string]int64{}}
		for range max(op.Weight, 1) {
			schedule = append(schedule, i)
		}
	}
	if len(ops) == 0 || spec.Rate <= 0 || spec.Duration <= 0 {
		return res
	}
	base := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: spec.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 10000,
		MaxConnsPerHost:     spec.MaxConns,
		IdleConnTimeout:     30 * time.Second,
		// HTTP/1.1 only, as the services speak.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	defer base.CloseIdleConnections()
	tr := &opTransport{base: base, op: map[string]int{}}
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{
			Timeout:       spec.Timeout,
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}),
		vegeta.Workers(64),
		// Workers are added when all are busy: a high cap keeps the model
		// open (a slow answer never delays the next start).
		vegeta.MaxWorkers(20000),
	)
	var n atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		i := schedule[(n.Add(1)-1)%uint64(len(schedule))]
		ops[i].Target(t)
		h := make(http.Header, len(t.Header)+1)
		for k, v := range t.Header {
			h[k] = v
		}
		h.Set(opHeader, strconv.Itoa(i))
		t.Header = h
		return nil
	}
	start := time.Now()
	results := atk.Attack(targeter, vegeta.ConstantPacer{Freq: spec.Rate, Per: time.Second}, spec.Duration, "titanium-loadgen")
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	var first, last time.Time
	var sent int64
	for r := range results {
		var op *Op
		var o *OpResult
		if i := tr.take(r.Seq); i >= 0 {
			op, o = &ops[i], res.Ops[ops[i].Name]
		} else {
			o = res.Ops["(unsent)"]
			if o == nil {
				o = &OpResult{Name: "(unsent)", Statuses: map[int]int64{}, Errors: map[string]int64{}}
				res.Ops[o.Name] = o
			}
		}
		sent++
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if r.Timestamp.After(last) {
			last = r.Timestamp
		}
		status := int(r.Code)
		o.Sent++
		o.Statuses[status]++
		o.latencies = append(o.latencies, r.Latency)
		res.all = append(res.all, r.Latency)
		ok := status != 0
		if ok && op != nil && op.OK != nil {
			ok = op.OK(status)
		} else if ok {
			ok = status >= 200 && status < 300
		}
		if op != nil && op.Answer != nil && status != 0 {
			op.Answer(status, r.Body)
		}
		if ok {
			o.OK++
			continue
		}
		o.Failed++
		msg := fmt.Sprintf("status %d", status)
		if status == 0 {
			msg = r.Error
			if len(msg) > 120 {
				msg = msg[:120]
			}
		}
		if _, seen := o.Errors[msg]; seen || len(o.Errors) < 8 {
			o.Errors[msg]++
		}
	}
	res.Elapsed = time.Since(start)
	if span := last.Sub(first); span > 0 && sent > 1 {
		// Starts per second over the span of starts (n-1 gaps).
		res.Achieved = float64(sent-1) / span.Seconds()
	}
	slices.Sort(res.all)
	for _, o := range res.Ops {
		slices.Sort(o.latencies)
	}
	return res
}

// Totals sums every op.
func (r *Result) Totals() (sent, ok, failed int64) {
	for _, o := range r.Ops {
		sent += o.Sent
		ok += o.OK
		failed += o.Failed
	}
	return sent, ok, failed
}

// Count5xx counts answers with a 5xx status over every op.
func (r *Result) Count5xx() int64 {
	var n int64
	for _, o := range r.Ops {
		for s, c := range o.Statuses {
			if s >= 500 {
				n += c
			}
		}
	}
	return n
}

// Percentile is the p-th percentile (0..100) latency over every op, 0 when
// there was no request.
func (r *Result) Percentile(p float64) time.Duration { return report.Percentile(r.all, p) }

// Percentile is the p-th percentile (0..100) latency of the op.
func (o *OpResult) Percentile(p float64) time.Duration { return report.Percentile(o.latencies, p) }

// Status is a short description of the run's failures, "" when there were
// none: the count of each failing status, and one error message.
func (r *Result) Status() string {
	codes := map[int]int64{}
	var sample string
	for _, name := range r.names() {
		o := r.Ops[name]
		for c, n := range o.Statuses {
			if c < 200 || c >= 300 {
				codes[c] += n
			}
		}
		for msg := range o.Errors {
			if sample == "" || msg < sample {
				sample = msg
			}
		}
	}
	if _, _, failed := r.Totals(); failed == 0 {
		return ""
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, fmt.Sprintf("%d×%d", codes[c], c))
	}
	s := strings.Join(parts, " ")
	if sample != "" {
		s += " (" + sample + ")"
	}
	return s
}

func (r *Result) names() []string {
	names := make([]string, 0, len(r.Ops))
	for n := range r.Ops {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// String is a one-line-per-op summary for logs.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "elapsed %s, achieved %.0f/s", r.Elapsed.Round(time.Millisecond), r.Achieved)
	for _, n := range r.names() {
		o := r.Ops[n]
		fmt.Fprintf(&b, "\n  %-8s sent=%d ok=%d failed=%d p50=%s p99=%s statuses=%v",
			n, o.Sent, o.OK, o.Failed, o.Percentile(50).Round(time.Microsecond), o.Percentile(99).Round(time.Microsecond), o.Statuses)
		for msg, c := range o.Errors {
			fmt.Fprintf(&b, "\n           %dx %s", c, msg)
		}
	}
	return b.String()
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

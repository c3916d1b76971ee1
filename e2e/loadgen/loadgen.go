// Package loadgen drives open-model load for the whole-stack tests: requests
// start on a fixed schedule whatever the latency (so a slow server meets the
// same arrival rate, as real users are), each with a timeout, with the run
// bounded in time and in concurrency. It records every outcome per operation.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one kind of request in a mix.
type Op struct {
	// Name labels the operation in results ("list", "create", ...).
	Name string
	// Weight is the op's share of the total rate.
	Weight int
	// Do sends one request and returns the HTTP status (0 for a transport
	// error) and an error describing a failure. It must honour ctx.
	Do func(ctx context.Context, c *http.Client) (status int, err error)
	// OK decides success; nil means 2xx.
	OK func(status int) bool
}

// Plan is a run: a total rate split over Ops by weight, for Duration.
type Plan struct {
	Rate     int // requests per second over all ops
	Duration time.Duration
	Ops      []Op
	// Timeout bounds each request (default 5 s).
	Timeout time.Duration
	// MaxInFlight bounds concurrency; arrivals beyond it count as failures
	// ("dropped") instead of queueing (default 512).
	MaxInFlight int
	// Client is used for every request (default: pooled keep-alive client).
	Client *http.Client
}

// OpResult is the outcome of one operation kind.
type OpResult struct {
	Name      string
	Sent      int64
	OK        int64
	Failed    int64
	Statuses  map[int]int64
	Errors    map[string]int64 // a few distinct failure messages, counted
	latencies []time.Duration
}

// Result is the outcome of a run.
type Result struct {
	Elapsed time.Duration
	Ops     map[string]*OpResult
	Dropped int64
}

// NewClient is a keep-alive client sized for load.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// Run executes the plan until its duration passes or ctx ends, then waits
// for requests in flight (each bounded by its timeout).
func Run(ctx context.Context, p Plan) *Result {
	if p.Timeout == 0 {
		p.Timeout = 5 * time.Second
	}
	if p.MaxInFlight == 0 {
		p.MaxInFlight = 512
	}
	if p.Client == nil {
		p.Client = NewClient(p.Timeout)
	}
	// The schedule is a repeating weighted sequence of ops.
	var seq []int
	for i, op := range p.Ops {
		for w := 0; w < op.Weight; w++ {
			seq = append(seq, i)
		}
	}
	res := &Result{Ops: map[string]*OpResult{}}
	for _, op := range p.Ops {
		res.Ops[op.Name] = &OpResult{Name: op.Name, Statuses: map[int]int64{}, Errors: map[string]int64{}}
	}
	if len(seq) == 0 || p.Rate <= 0 {
		return res
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		inFlight atomic.Int64
	)
	interval := time.Second / time.Duration(p.Rate)
	start := time.Now()
	deadline := start.Add(p.Duration)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for n := 0; ; n++ {
		next := start.Add(time.Duration(n) * interval)
		if !next.Before(deadline) {
			break
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-runCtx.Done():
			case <-time.After(d):
			}
		}
		if runCtx.Err() != nil {
			break
		}
		op := p.Ops[seq[n%len(seq)]]
		r := res.Ops[op.Name]
		if inFlight.Load() >= int64(p.MaxInFlight) {
			mu.Lock()
			r.Sent++
			r.Failed++
			r.Errors["dropped: too many requests in flight"]++
			res.Dropped++
			mu.Unlock()
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			// Requests get their own timeout, not the run's deadline: a
			// request started just before the end must be allowed to finish.
			rctx, rcancel := context.WithTimeout(ctx, p.Timeout)
			defer rcancel()
			t0 := time.Now()
			status, err := op.Do(rctx, p.Client)
			lat := time.Since(t0)
			ok := err == nil && status != 0
			if ok {
				if op.OK != nil {
					ok = op.OK(status)
				} else {
					ok = status >= 200 && status < 300
				}
			}
			mu.Lock()
			defer mu.Unlock()
			r.Sent++
			r.Statuses[status]++
			r.latencies = append(r.latencies, lat)
			if ok {
				r.OK++
				return
			}
			r.Failed++
			msg := fmt.Sprintf("status %d", status)
			if err != nil {
				msg = err.Error()
				if len(msg) > 120 {
					msg = msg[:120]
				}
			}
			if len(r.Errors) < 8 {
				r.Errors[msg]++
			} else if _, seen := r.Errors[msg]; seen {
				r.Errors[msg]++
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// Totals sums every op.
func (r *Result) Totals() (sent, ok, failed int64) {
	for _, o := range r.Ops {
		sent += o.Sent
		ok += o.OK
		failed += o.Failed
	}
	return
}

// Count5xx counts responses with a 5xx status over every op.
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

// Percentile returns the q-quantile latency of an op (0 when none).
func (o *OpResult) Percentile(q float64) time.Duration {
	if len(o.latencies) == 0 {
		return 0
	}
	l := append([]time.Duration(nil), o.latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	idx := int(q*float64(len(l))+0.5) - 1
	idx = max(0, min(idx, len(l)-1))
	return l[idx]
}

// String is a one-line-per-op summary for test logs.
func (r *Result) String() string {
	var b strings.Builder
	names := make([]string, 0, len(r.Ops))
	for n := range r.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "elapsed %s", r.Elapsed.Round(time.Millisecond))
	for _, n := range names {
		o := r.Ops[n]
		fmt.Fprintf(&b, "\n  %-8s sent=%d ok=%d failed=%d p50=%s p99=%s statuses=%v",
			n, o.Sent, o.OK, o.Failed, o.Percentile(0.5).Round(time.Microsecond), o.Percentile(0.99).Round(time.Microsecond), o.Statuses)
		for msg, c := range o.Errors {
			fmt.Fprintf(&b, "\n           %dx %s", c, msg)
		}
	}
	return b.String()
}

// Request builds a simple Op.Do for method and url with an optional body
// and headers (alternating key, value).
func Request(method, url string, body func() io.Reader, headers ...string) func(ctx context.Context, c *http.Client) (int, error) {
	return func(ctx context.Context, c *http.Client) (int, error) {
		var rd io.Reader
		if body != nil {
			rd = body()
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return 0, err
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

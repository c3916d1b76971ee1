// Package window keeps request statistics over a sliding time window made of
// fixed one-second buckets: recording is O(1) and memory is constant whatever
// the request rate, and a snapshot sums at most a window's worth of buckets.
package window

import (
	"math"
	"sync"
	"time"
)

// BoundsMs are the upper bounds, in milliseconds, of the latency histogram
// buckets; a last, implicit bucket holds everything slower.
var BoundsMs = [...]float64{0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000}

// NumBuckets is the length of a latency histogram, the overflow bucket included.
const NumBuckets = len(BoundsMs) + 1

// Histogram counts latencies per bucket of BoundsMs.
type Histogram [NumBuckets]uint64

type bucket struct {
	second   int64 // unix second this bucket holds; stale when older than the window
	requests uint64
	failures uint64
	sumNanos int64
	hist     Histogram
}

// Window is safe for concurrent use.
type Window struct {
	mu      sync.Mutex
	buckets []bucket
}

// New returns a window spanning the given number of seconds (at least 1).
func New(seconds int) *Window {
	if seconds < 1 {
		seconds = 1
	}
	return &Window{buckets: make([]bucket, seconds)}
}

// Seconds is the window's span.
func (w *Window) Seconds() int { return len(w.buckets) }

// Record adds one request that ended at now, took d, and failed or not.
func (w *Window) Record(now time.Time, d time.Duration, failed bool) {
	sec := now.Unix()
	i := bucketIndex(d)
	w.mu.Lock()
	b := &w.buckets[sec%int64(len(w.buckets))]
	if b.second != sec {
		*b = bucket{second: sec}
	}
	b.requests++
	if failed {
		b.failures++
	}
	b.sumNanos += int64(d)
	b.hist[i]++
	w.mu.Unlock()
}

func bucketIndex(d time.Duration) int {
	ms := float64(d) / float64(time.Millisecond)
	// A linear scan beats binary search for ~26 small floats and keeps the
	// hot path branch-predictable; most requests land in the first buckets.
	for i, b := range BoundsMs {
		if ms <= b {
			return i
		}
	}
	return NumBuckets - 1
}

// Totals are raw sums over a window, mergeable across instances.
type Totals struct {
	// Seconds is the time the sums cover (the span minus the unfinished part
	// of the current second).
	Seconds  float64   `json:"seconds"`
	Requests uint64    `json:"requests"`
	Failures uint64    `json:"failures"`
	SumNanos int64     `json:"sum_nanos"`
	Hist     Histogram `json:"hist"`
}

// Totals sums the buckets inside the window ending at now.
func (w *Window) Totals(now time.Time) Totals {
	sec := now.Unix()
	span := int64(len(w.buckets))
	frac := float64(now.Sub(time.Unix(sec, 0))) / float64(time.Second)
	t := Totals{Seconds: float64(span-1) + frac}
	w.mu.Lock()
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.second <= sec-span || b.second > sec {
			continue
		}
		t.Requests += b.requests
		t.Failures += b.failures
		t.SumNanos += b.sumNanos
		for j, c := range b.hist {
			t.Hist[j] += c
		}
	}
	w.mu.Unlock()
	return t
}

// Add merges o into t (for summing the windows of several replicas).
func (t *Totals) Add(o Totals) {
	if o.Seconds > t.Seconds {
		t.Seconds = o.Seconds
	}
	t.Requests += o.Requests
	t.Failures += o.Failures
	t.SumNanos += o.SumNanos
	for i, c := range o.Hist {
		t.Hist[i] += c
	}
}

// Summary is the derived view of Totals that dashboards show.
type Summary struct {
	WindowSeconds      float64 `json:"window_seconds"`
	Requests           uint64  `json:"requests"`
	Failures           uint64  `json:"failures"`
	RequestsPerSecond  float64 `json:"requests_per_second"`
	AvgResponseTimeMs  float64 `json:"avg_response_time_ms"`
	P50ResponseTimeMs  float64 `json:"p50_response_time_ms"`
	P95ResponseTimeMs  float64 `json:"p95_response_time_ms"`
	P99ResponseTimeMs  float64 `json:"p99_response_time_ms"`
	SuccessRatePercent float64 `json:"success_rate"`
}

// Summary derives rates and percentiles. With no requests the success rate
// is 100: nothing failed.
func (t Totals) Summary(span int) Summary {
	s := Summary{WindowSeconds: float64(span), Requests: t.Requests, Failures: t.Failures, SuccessRatePercent: 100}
	if t.Seconds > 0 {
		s.RequestsPerSecond = round(float64(t.Requests)/t.Seconds, 2)
	}
	if t.Requests == 0 {
		return s
	}
	s.AvgResponseTimeMs = round(float64(t.SumNanos)/float64(t.Requests)/1e6, 3)
	s.P50ResponseTimeMs = round(t.Hist.Quantile(0.50), 3)
	s.P95ResponseTimeMs = round(t.Hist.Quantile(0.95), 3)
	s.P99ResponseTimeMs = round(t.Hist.Quantile(0.99), 3)
	s.SuccessRatePercent = round(100*float64(t.Requests-t.Failures)/float64(t.Requests), 2)
	return s
}

// Quantile estimates the q-quantile in milliseconds by linear interpolation
// inside the bucket that holds it, as Prometheus' histogram_quantile does.
func (h *Histogram) Quantile(q float64) float64 {
	var total uint64
	for _, c := range h {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		next := cum + float64(c)
		if next >= rank {
			lo := 0.0
			if i > 0 {
				lo = BoundsMs[i-1]
			}
			if i == NumBuckets-1 {
				return BoundsMs[len(BoundsMs)-1]
			}
			hi := BoundsMs[i]
			return lo + (hi-lo)*(rank-cum)/float64(c)
		}
		cum = next
	}
	return BoundsMs[len(BoundsMs)-1]
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

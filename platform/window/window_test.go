package window

import (
	"math"
	"testing"
	"time"
)

func TestWindowCountsOnlyTheLastSpan(t *testing.T) {
	w := New(10)
	base := time.Unix(1_000_000, 0)
	for i := 0; i < 20; i++ { // one request per second for 20 s
		w.Record(base.Add(time.Duration(i)*time.Second), 10*time.Millisecond, i%4 == 0)
	}
	now := base.Add(19*time.Second + 500*time.Millisecond)
	got := w.Totals(now)
	if got.Requests != 10 {
		t.Fatalf("requests: got %d, want 10 (seconds 10..19)", got.Requests)
	}
	// Failures at i = 12 and 16 fall inside seconds 10..19.
	if got.Failures != 2 {
		t.Errorf("failures: got %d, want 2", got.Failures)
	}
	if math.Abs(got.Seconds-9.5) > 1e-9 {
		t.Errorf("seconds covered: got %v, want 9.5", got.Seconds)
	}
	s := got.Summary(10)
	if want := 10 / 9.5; math.Abs(s.RequestsPerSecond-math.Round(want*100)/100) > 1e-9 {
		t.Errorf("rps: got %v, want %.2f", s.RequestsPerSecond, want)
	}
	if s.SuccessRatePercent != 80 {
		t.Errorf("success rate: got %v, want 80", s.SuccessRatePercent)
	}
	if s.AvgResponseTimeMs != 10 {
		t.Errorf("avg: got %v, want 10", s.AvgResponseTimeMs)
	}
}

func TestWindowGoesIdle(t *testing.T) {
	w := New(10)
	base := time.Unix(2_000_000, 0)
	w.Record(base, time.Millisecond, false)
	if got := w.Totals(base.Add(9 * time.Second)).Requests; got != 1 {
		t.Errorf("9 s later: got %d requests, want 1", got)
	}
	if got := w.Totals(base.Add(10 * time.Second)).Requests; got != 0 {
		t.Errorf("10 s later: got %d requests, want 0", got)
	}
	s := w.Totals(base.Add(time.Minute)).Summary(10)
	if s.SuccessRatePercent != 100 || s.RequestsPerSecond != 0 || s.P99ResponseTimeMs != 0 {
		t.Errorf("idle summary: got %+v, want 100%% success and zeros", s)
	}
}

func TestQuantiles(t *testing.T) {
	w := New(10)
	now := time.Unix(3_000_000, 0)
	// 90 fast (0.8 ms, bucket (0.5,1]) and 10 slow (40 ms, bucket (30,50]).
	for i := 0; i < 90; i++ {
		w.Record(now, 800*time.Microsecond, false)
	}
	for i := 0; i < 10; i++ {
		w.Record(now, 40*time.Millisecond, false)
	}
	s := w.Totals(now).Summary(10)
	tests := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"p50", s.P50ResponseTimeMs, 0.5, 1},
		{"p95", s.P95ResponseTimeMs, 30, 50},
		{"p99", s.P99ResponseTimeMs, 30, 50},
	}
	for _, tt := range tests {
		if tt.got < tt.min || tt.got > tt.max {
			t.Errorf("%s: got %v, want within [%v, %v]", tt.name, tt.got, tt.min, tt.max)
		}
	}
}

func TestTotalsAddMergesReplicas(t *testing.T) {
	a, b := New(10), New(10)
	now := time.Unix(4_000_000, 0)
	a.Record(now, time.Millisecond, false)
	b.Record(now, 3*time.Millisecond, true)
	b.Record(now, 3*time.Millisecond, false)
	sum := a.Totals(now)
	sum.Add(b.Totals(now))
	if sum.Requests != 3 || sum.Failures != 1 {
		t.Fatalf("merged: got %d requests %d failures, want 3 and 1", sum.Requests, sum.Failures)
	}
	var hist uint64
	for _, c := range sum.Hist {
		hist += c
	}
	if hist != 3 {
		t.Errorf("merged histogram holds %d, want 3", hist)
	}
}

func TestMemoryIsFlat(t *testing.T) {
	w := New(10)
	now := time.Unix(5_000_000, 0)
	allocs := testing.AllocsPerRun(1000, func() { w.Record(now, time.Millisecond, false) })
	if allocs != 0 {
		t.Errorf("Record allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkRecord(b *testing.B) {
	w := New(10)
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(now, 2*time.Millisecond, false)
		}
	})
}

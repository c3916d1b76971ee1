package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of 4 is the 2nd (nearest rank)", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p95 of 10 rounds up", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 95, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(p%v): got %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestAddTarget(t *testing.T) {
	var r Report
	r.AddTarget("B1", "rate", 2500, "req/s", true, 2000, "")
	r.AddTarget("B4", "ratio", 1.7, "×", false, 1.5, "")
	r.AddTarget("B5", "hung", 2.1, "s", false, 2.1, "")
	for i, want := range []bool{true, false, true} {
		if got := *r.Figures[i].Met; got != want {
			t.Errorf("figure %s: met %v, want %v", r.Figures[i].Name, got, want)
		}
	}
	if got, want := r.Figures[0].Target, "≥ 2000"; got != want {
		t.Errorf("target text: got %q, want %q", got, want)
	}
}

func TestWriteTextAndJSON(t *testing.T) {
	r := Report{Env: Env{CPU: "Test CPU", Cores: 2, GoVersion: "go1.x", Commit: "abc123", Tools: map[string]string{"mode": "quick"}}}
	r.AddTarget("B2", "LB / nginx throughput", 0.82, "×", true, 0.7, "wrk")
	r.Add("B3", "LB RSS at 100 req/s", 12.5, "MiB", "")
	r.Detail("B1", &Table{Title: "B1 steps", Columns: []string{"rate/s", "p99 ms"}, Rows: [][]string{{"250", "3.1"}}})
	r.Skip("B4", "no benchmark")
	var buf bytes.Buffer
	r.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{"cpu: Test CPU, 2 cores", "commit abc123", "B1 steps", "| B2", "0.82 ×", "≥ 0.7", "yes", "12.5 MiB", "B4 not measured: no benchmark"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Figures) != 2 || back.Figures[0].Value != 0.82 || back.Figures[0].Met == nil || !*back.Figures[0].Met {
		t.Errorf("JSON round trip: got %+v", back.Figures)
	}
	if back.Skipped["B4"] != "no benchmark" || back.Details["B1"].Rows[0][0] != "250" {
		t.Errorf("JSON round trip lost skipped/details: %+v %+v", back.Skipped, back.Details)
	}
}

func TestCollect(t *testing.T) {
	e := Collect(".")
	if e.Cores < 1 || e.GoVersion == "" || e.CPU == "" || e.Commit == "" {
		t.Errorf("Collect: got %+v", e)
	}
}

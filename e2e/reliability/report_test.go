package reliability_test

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// profile sets the scale of the scenarios: the CI profile is a shortened,
// time-bounded version of the full one (`make reliability`).
type profile struct {
	name          string
	r1Load        time.Duration // R1 total load time
	r1Every       time.Duration // R1 interval between restarts
	rate          int           // mixed-load rate for R1, R2, R4
	r2Load        time.Duration
	r5Load        time.Duration
	r6Load        time.Duration
	r8Attempts    int
	r9Clients     int
	r10Load       time.Duration
	r10Rate       int
	r10Warmup     time.Duration
	wsPongWait    time.Duration
	restartWindow time.Duration // how long R2 leaves the crashed instance down
	r11Conns      int           // R11 connections declaring an oversize body
	r11Hold       time.Duration // how long R11 keeps them open
}

func currentProfile() profile {
	if os.Getenv("RELIABILITY") == "full" {
		return profile{
			name: "full", r1Load: 60 * time.Second, r1Every: 15 * time.Second, rate: 300,
			r2Load: 30 * time.Second, r5Load: 20 * time.Second, r6Load: 10 * time.Second,
			r8Attempts: 1000, r9Clients: 200, r10Load: 10 * time.Minute, r10Rate: envInt("R10_RATE", 500),
			r10Warmup: time.Minute, wsPongWait: 5 * time.Second, restartWindow: 5 * time.Second,
			r11Conns: 60, r11Hold: 5 * time.Second,
		}
	}
	return profile{
		name: "ci", r1Load: 20 * time.Second, r1Every: 5 * time.Second, rate: 150,
		r2Load: 12 * time.Second, r5Load: 6 * time.Second, r6Load: 5 * time.Second,
		r8Attempts: 1000, r9Clients: 200, r10Load: 60 * time.Second, r10Rate: envInt("R10_RATE", 300),
		r10Warmup: 15 * time.Second, wsPongWait: 2 * time.Second, restartWindow: 3 * time.Second,
		r11Conns: 60, r11Hold: 2 * time.Second,
	}
}

func envInt(key string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(key), &n); err == nil && n > 0 {
		return n
	}
	return def
}

// row is one line of the reliability table.
type row struct {
	Scenario string
	Load     string
	Fault    string
	Sent     int64
	Failures int64
	Lost     int64
	Verdict  string
	Detail   string
}

type report struct {
	mu   sync.Mutex
	rows []row
}

func (r *report) add(t *testing.T, x row) {
	t.Helper()
	x.Verdict = "PASS"
	if t.Failed() {
		x.Verdict = "FAIL"
	}
	r.mu.Lock()
	r.rows = append(r.rows, x)
	r.mu.Unlock()
	t.Logf("%s: sent=%d failures=%d lost=%d %s", x.Scenario, x.Sent, x.Failures, x.Lost, x.Detail)
}

func (r *report) print(w io.Writer, p profile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "\nReliability scenarios (profile %s)\n", p.name)
	fmt.Fprintln(w, "| scenario | load | fault | requests sent | failures | acknowledged lost | verdict |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---|")
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %d | %s |\n", x.Scenario, x.Load, x.Fault, x.Sent, x.Failures, x.Lost, x.Verdict)
	}
	var details []string
	for _, x := range r.rows {
		if x.Detail != "" {
			details = append(details, "- "+x.Scenario+": "+x.Detail)
		}
	}
	if len(details) > 0 {
		fmt.Fprintln(w, strings.Join(details, "\n"))
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"titanium/bench/report"
	"titanium/devstack"
)

// TestMain lets the test binary play the trivial backend and the stock
// proxy, as the real binary does (they re-execute os.Executable()).
func TestMain(m *testing.M) {
	if code, ok := child(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestParseBenchListPosts(t *testing.T) {
	out := `goos: linux
BenchmarkListPosts/rows=1000-2         	    2000	     41234 ns/op	    9000 B/op	     200 allocs/op
BenchmarkListPosts/rows=1000000-2      	    2000	     52001.5 ns/op	    9000 B/op	     200 allocs/op
BenchmarkListPosts/rows=1000-2         	    2000	     45000 ns/op	    9000 B/op	     200 allocs/op
BenchmarkListPosts/rows=1000000-2      	    2000	     99000 ns/op	    9000 B/op	     200 allocs/op
PASS`
	got := parseBench(out)
	if got["BenchmarkListPosts/rows=1000"] != 41234 || got["BenchmarkListPosts/rows=1000000"] != 52001.5 {
		t.Errorf("got %v, want the best of each size: 41234 and 52001.5", got)
	}
}

func TestOnlyRejectsUnknownScenario(t *testing.T) {
	var buf bytes.Buffer
	if err := run([]string{"-only", "B9"}, &buf); err == nil || !strings.Contains(err.Error(), "B9") {
		t.Errorf("-only B9: got %v, want an error naming B9", err)
	}
}

// TestQuickB2 is the smoke test of the tool: the real load-balancer binary,
// nginx and wrk, one short round each, and a report with the figures.
func TestQuickB2(t *testing.T) {
	for _, tool := range []string{"wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install %s)", tool, tool)
		}
	}
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./load-balancer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build load-balancer: %v\n%s", err, out)
	}
	outDir := t.TempDir()
	var buf bytes.Buffer
	if err := run([]string{"-bin", bin, "-quick", "-only", "B2", "-out", outDir}, &buf); err != nil {
		t.Fatalf("run: %v\n%s", err, buf.String())
	}
	t.Log(buf.String())
	files, _ := filepath.Glob(filepath.Join(outDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("want one JSON report in %s, got %v", outDir, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) > 0 {
		t.Fatalf("skipped: %v", rep.Skipped)
	}
	got := map[string]float64{}
	for _, f := range rep.Figures {
		got[f.Name] = f.Value
	}
	for _, name := range []string{"LB max throughput", "nginx max throughput", "LB / nginx throughput"} {
		if got[name] <= 0 {
			t.Errorf("figure %q: got %v, want > 0", name, got[name])
		}
	}
	if !strings.Contains(buf.String(), "| B2") {
		t.Errorf("no B2 row in the printed table")
	}
}

func TestPairedMedian(t *testing.T) {
	for _, tc := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{1, 2, 3}, []float64{2, 2, 2}, 1},
		{[]float64{9, 8}, []float64{10, 10}, 0.85},
		{[]float64{5}, []float64{0}, 0},
		{nil, nil, 0},
	} {
		if got := pairedMedian(tc.a, tc.b); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("pairedMedian(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// statsCalls sums the GET /stats requests of every code from a real
// Prometheus text exposition and ignores other routes.
func TestStatsCalls(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200",method="GET",route="GET /stats"} 5
http_requests_total{code="503",method="GET",route="GET /stats"} 2
http_requests_total{code="200",method="GET",route="GET /healthz"} 40
`)
	}))
	defer srv.Close()
	n, err := statsCalls(context.Background(), srv.URL)
	if err != nil || n != 7 {
		t.Fatalf("statsCalls = %v, %v; want 7", n, err)
	}
}

func TestParseBenchKeepsTheBestOfEachName(t *testing.T) {
	out := `BenchmarkEncodePage/encoder=hand-2         	    2000	     17269 ns/op
BenchmarkEncodePage/encoder=hand-2         	    2000	     9900 ns/op
BenchmarkHandlers/nocache/list-2           	    2000	     70079 ns/op	   33515 B/op	     278 allocs/op
PASS`
	got := parseBench(out)
	if got["BenchmarkEncodePage/encoder=hand"] != 9900 || got["BenchmarkHandlers/nocache/list"] != 70079 || len(got) != 2 {
		t.Fatalf("parseBench = %v", got)
	}
}

func TestProcFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte("Name:\tx\nVmRSS:\t   1234 kB\nsyscr: 56\nvoluntary_ctxt_switches:\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := procFields(path, "voluntary_ctxt_switches", "VmRSS", "syscr")
	if err != nil || !slices.Equal(got, []int64{7, 1234, 56}) {
		t.Fatalf("got %v, %v; want [7 1234 56]", got, err)
	}
	if _, err := procFields(path, "VmRSS", "VmHWM"); err == nil {
		t.Fatal("a missing field read without error")
	}
	if got, err := procFields(fmt.Sprintf("/proc/%d/io", os.Getpid()), "syscr", "syscw"); err != nil || got[0] <= 0 {
		t.Fatalf("own /proc io: %v, %v", got, err)
	}
}

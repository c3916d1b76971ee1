// Command titanium-bench is `make bench`: it starts the stack (or a lone
// load balancer, a trivial backend and nginx) from prebuilt binaries, drives
// open-model load at fixed arrival rates, and prints a report of the
// figures B1..B5 against their targets, also written as JSON to
// bench/out/<timestamp>.json.
//
//	titanium-bench -bin bin                # everything (a few minutes)
//	titanium-bench -bin bin -only B2,B3    # a subset
//	titanium-bench -bin bin -quick         # a short smoke run of the same code
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"titanium/bench/backend"
	"titanium/bench/report"
	"titanium/devstack"
)

// config is what the flags set.
type config struct {
	root   string
	bin    string
	outDir string
	only   []string
	quick  bool
	// rates replaces B1's ladder of steps (-rates).
	rates []int
	// env adds variables per service of the stack (-env).
	env map[string]map[string]string
	log io.Writer // progress lines
}

// scenario is one of B1..B5. Scenarios that need the whole stack share one.
type scenario struct {
	id        string
	title     string
	needStack bool
	run       func(ctx context.Context, b *bench) error
}

var scenarios = []scenario{
	{"B1", "mixed load list:detail:create 16:3:1 through LB → gateway → blog", true, runB1},
	{"B2", "LB hop vs nginx, same trivial backend", false, runB2},
	{"B3", "LB traffic stats on vs off; LB RSS at 100 vs 10,000 RPS", false, runB3},
	{"B4", "post list latency at 10^3 vs 10^6 rows", false, runB4},
	{"B5", "/stats latency, shared fan-out, one service hung", true, runB5},
}

// bench is the state of one run, handed to every scenario.
type bench struct {
	config
	rep   *report.Report
	stack *devstack.Stack
	tmp   string
}

// step scales a duration down in quick mode.
func (b *bench) step(full, quick time.Duration) time.Duration {
	if b.quick {
		return quick
	}
	return full
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "  "+format+"\n", args...)
}

func main() {
	if code, ok := child(os.Args[1:]); ok {
		os.Exit(code)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "titanium-bench:", err)
		os.Exit(1)
	}
}

// child runs this binary as one of the benchmark's own servers when args
// ask for it: the trivial backend ("backend ADDR") or the stock proxy
// baseline ("stock-proxy ADDR UPSTREAM"). Each runs as its own process, so
// that its CPU is its own and not the load generator's.
func child(args []string) (code int, ok bool) {
	var serve func(ctx context.Context) error
	switch {
	case len(args) == 2 && args[0] == "backend":
		serve = func(ctx context.Context) error { return backend.Serve(ctx, args[1]) }
	case len(args) == 3 && args[0] == "stock-proxy":
		serve = func(ctx context.Context) error { return backend.ServeStockProxy(ctx, args[1], args[2]) }
	default:
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A bound, so that a child whose parent vanished still ends.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if err := serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, args[0]+":", err)
		return 1, true
	}
	return 0, true
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("titanium-bench", flag.ContinueOnError)
	bin := fs.String("bin", "bin", "directory with the built service binaries (make build)")
	only := fs.String("only", "", "comma-separated scenarios to run, e.g. B1,B3 (default: all)")
	quick := fs.Bool("quick", false, "short smoke run: few seconds per step, small rates")
	out := fs.String("out", "", "directory for the JSON report (default <repo>/bench/out)")
	var rates []int
	fs.Func("rates", "B1's steps, comma-separated req/s (default 250,500,1000,...,5000)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				return fmt.Errorf("want positive rates, got %q", f)
			}
			rates = append(rates, r)
		}
		return nil
	})
	env := map[string]map[string]string{}
	fs.Func("env", "`service:KEY=VALUE` for the stack's processes, e.g. api-gateway:GOGC=400 (repeatable)", func(v string) error {
		svc, kv, ok1 := strings.Cut(v, ":")
		k, val, ok2 := strings.Cut(kv, "=")
		if !ok1 || !ok2 || svc == "" || k == "" {
			return fmt.Errorf("want service:KEY=VALUE, got %q", v)
		}
		if env[svc] == nil {
			env[svc] = map[string]string{}
		}
		env[svc][k] = val
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := devstack.FindRoot(".")
	if err != nil {
		return err
	}
	cfg := config{root: root, quick: *quick, rates: rates, env: env, log: stdout}
	if cfg.bin, err = filepath.Abs(*bin); err != nil {
		return err
	}
	cfg.outDir = *out
	if cfg.outDir == "" {
		cfg.outDir = filepath.Join(root, "bench", "out")
	}
	var selected []scenario
	for _, id := range strings.Split(strings.ToUpper(*only), ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.id == id })
		if i < 0 {
			return fmt.Errorf("-only: unknown scenario %q (have B1..B5)", id)
		}
		cfg.only = append(cfg.only, id)
	}
	for _, s := range scenarios {
		if len(cfg.only) == 0 || slices.Contains(cfg.only, s.id) {
			selected = append(selected, s)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runScenarios(ctx, cfg, selected, stdout)
}

func runScenarios(ctx context.Context, cfg config, selected []scenario, stdout io.Writer) error {
	start := time.Now()
	tmp, err := os.MkdirTemp("", "titanium-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{config: cfg, rep: &report.Report{Env: report.Collect(cfg.root)}, tmp: tmp}
	b.rep.Env.Tools["mode"] = map[bool]string{true: "quick", false: "full"}[cfg.quick]
	for _, s := range selected {
		if ctx.Err() != nil {
			break
		}
		if s.needStack && b.stack == nil {
			if err := b.startStack(ctx); err != nil {
				b.rep.Skip(s.id, err.Error())
				fmt.Fprintf(stdout, "%s skipped: %v\n", s.id, err)
				continue
			}
		}
		fmt.Fprintf(stdout, "%s: %s\n", s.id, s.title)
		t0 := time.Now()
		if err := s.run(ctx, b); err != nil {
			b.rep.Skip(s.id, err.Error())
			fmt.Fprintf(stdout, "%s failed: %v\n", s.id, err)
		}
		fmt.Fprintf(stdout, "  (%s took %.0f s)\n", s.id, time.Since(t0).Seconds())
	}
	if b.stack != nil {
		b.stack.Stop(10 * time.Second)
	}
	b.rep.Elapsed = time.Since(start).Seconds()
	fmt.Fprintln(stdout)
	b.rep.WriteText(stdout)
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(cfg.outDir, b.rep.Env.Time.Format("20060102-150405")+".json")
	if err := b.rep.WriteJSON(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report written to %s\n", path)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// startStack starts the whole stack from the prebuilt binaries for the
// scenarios that share it.
func (b *bench) startStack(ctx context.Context) error {
	s, err := b.newStack(ctx, "stack", nil)
	if err != nil {
		return err
	}
	b.stack = s
	return nil
}

// newStack starts a whole stack from the prebuilt binaries, with -env and
// then env (service → variables) on top, its data and log (name.log) under
// the run's temp dir.
func (b *bench) newStack(ctx context.Context, name string, env map[string]map[string]string) (*devstack.Stack, error) {
	if _, err := os.Stat(filepath.Join(b.bin, "load-balancer")); err != nil {
		return nil, fmt.Errorf("no service binaries in %s (run make build): %w", b.bin, err)
	}
	logf, err := os.Create(filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	all := map[string]map[string]string{}
	for _, m := range []map[string]map[string]string{b.env, env} {
		for svc, vars := range m {
			if all[svc] == nil {
				all[svc] = map[string]string{}
			}
			maps.Copy(all[svc], vars)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	s, err := devstack.Start(sctx, devstack.Options{
		Root: b.root, BinDir: b.bin, DataDir: filepath.Join(b.tmp, name+"-data"), Redis: true, Log: logf, Env: all,
	})
	if err != nil {
		return nil, fmt.Errorf("start stack: %w (log: %s)", err, devstack.TailFile(logf.Name(), 20))
	}
	return s, nil
}

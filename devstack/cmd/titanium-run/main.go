// Command titanium-run runs the whole Titanium stack as local processes
// (`make run`): redis-server when installed, then every service on its
// default port, each waited for until ready, with name-prefixed logs. Ctrl-C
// (or SIGTERM) stops every process gracefully and leaves none behind.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"titanium/devstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "titanium-run:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		binDir  = flag.String("bin", "bin", "directory with the built service binaries")
		dataDir = flag.String("data", "data", "directory for the SQLite files and redis")
		noRedis = flag.Bool("no-redis", false, "run without redis-server (cache reported OFFLINE)")
		grace   = flag.Duration("grace", 15*time.Second, "how long each process may take to stop on Ctrl-C")
	)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ports := map[string]int{}
	for k, v := range devstack.DefaultPorts {
		ports[k] = v
	}
	stack, err := devstack.Start(ctx, devstack.Options{
		BinDir: *binDir, DataDir: *dataDir, Ports: ports, Redis: !*noRedis,
		Log: os.Stdout, ReadyTimeout: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	fmt.Printf(`
  Titanium is up.
    dashboard     http://localhost:%d
    stats         http://localhost:%d/stats
    api           http://localhost:%d/api/health
    blog          http://localhost:%d/blog/
  Press Ctrl-C to stop.

`, ports["load-balancer"], ports["load-balancer"], ports["load-balancer"], ports["load-balancer"])

	// Stop on a signal, or as soon as any process dies on its own: a
	// half-running stack is worse than a stopped one.
	died := make(chan *devstack.Proc, 1)
	for _, p := range stack.Procs() {
		go func() {
			select {
			case <-p.Done():
				select {
				case died <- p:
				default:
				}
			case <-ctx.Done():
			}
		}()
	}
	var cause error
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping every process...")
	case p := <-died:
		cause = fmt.Errorf("%s exited unexpectedly (code %d); stopped the stack", p.Name, p.ExitCode())
		fmt.Println(cause)
	}
	bad := stack.Stop(*grace)
	for name, code := range bad {
		fmt.Printf("%s exited with code %d\n", name, code)
	}
	if cause == nil && len(bad) == 0 {
		fmt.Println("all processes stopped cleanly")
	}
	return cause
}

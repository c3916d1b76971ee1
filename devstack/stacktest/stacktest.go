// Package stacktest starts the real Titanium stack for whole-stack tests:
// real binaries on free 127.0.0.1 ports, a real redis-server in a temp dir,
// readiness waited for, everything stopped in t.Cleanup, and every
// process's log kept in a file that is reported when the test fails.
package stacktest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"titanium/devstack"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds the service binaries once per test process and returns
// their directory. STACK_BIN_DIR, when set, is used as is (prebuilt).
func Binaries(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv("STACK_BIN_DIR"); dir != "" {
			binDir = dir
			return
		}
		root, err := devstack.FindRoot(".")
		if err != nil {
			buildErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "titanium-bin-")
		if err != nil {
			buildErr = err
			return
		}
		var extra []string
		if os.Getenv("STACK_RACE") == "1" {
			extra = append(extra, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		buildErr = devstack.Build(ctx, root, binDir, extra...)
	})
	if buildErr != nil {
		tb.Fatalf("build services: %v", buildErr)
	}
	return binDir
}

// Option changes the stack's options before it starts.
type Option func(*devstack.Options)

// WithReplicas runs n instances of service.
func WithReplicas(service string, n int) Option {
	return func(o *devstack.Options) {
		if o.Replicas == nil {
			o.Replicas = map[string]int{}
		}
		o.Replicas[service] = n
	}
}

// WithEnv sets a variable for every instance of service.
func WithEnv(service, key, value string) Option {
	return func(o *devstack.Options) {
		if o.Env == nil {
			o.Env = map[string]map[string]string{}
		}
		if o.Env[service] == nil {
			o.Env[service] = map[string]string{}
		}
		o.Env[service][key] = value
	}
}

// WithoutRedis runs the stack with no redis-server.
func WithoutRedis() Option { return func(o *devstack.Options) { o.Redis = false } }

// Start starts the whole stack for the test and stops it at cleanup. A
// process that does not exit 0 on SIGTERM at cleanup fails the test, unless
// the test stopped or killed it itself.
func Start(t testing.TB, opts ...Option) *devstack.Stack {
	t.Helper()
	RequireRedis(t)
	bin := Binaries(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "stack.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	o := devstack.Options{BinDir: bin, DataDir: filepath.Join(dir, "data"), Redis: true, Log: logFile}
	// Whole-stack tests register hundreds of users and open hundreds of
	// heartbeat sockets from 127.0.0.1; both per-address limits have their
	// own unit tests. A test may set them back.
	opts = append([]Option{
		WithEnv("user-service", "REGISTER_IP_PER_MINUTE", "1000000"),
		WithEnv("user-service", "REGISTER_IP_BURST", "1000000"),
		WithEnv("load-balancer", "WS_MAX_CONNS_PER_ADDR", "100000"),
	}, opts...)
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := devstack.Start(ctx, o)
	if err != nil {
		logFile.Close()
		t.Fatalf("start stack: %v\n--- stack log ---\n%s", err, devstack.TailFile(logPath, 80))
	}
	t.Cleanup(func() {
		bad := s.Stop(15 * time.Second)
		logFile.Close()
		for name, code := range bad {
			t.Errorf("%s exited %d on SIGTERM, want 0", name, code)
		}
		if t.Failed() {
			t.Logf("--- stack log (last lines) ---\n%s", devstack.TailFile(logPath, 150))
		}
	})
	return s
}

// RequireRedis fails the test when redis-server is missing: whole-stack
// tests run against a real redis (.ci/run installs it).
func RequireRedis(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server); whole-stack tests need it")
	}
}

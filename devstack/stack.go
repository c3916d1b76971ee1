// Package devstack runs the whole Titanium stack as local processes: it
// builds the service binaries, starts redis-server and every service on
// 127.0.0.1 with the right environment, waits until each is ready, prefixes
// their log lines, and stops them all. `make run` and the whole-stack tests
// share it.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"titanium/platform/topology"
)

// Services are the Go services in start order: dependencies first.
var Services = func() []string {
	var names []string
	for _, s := range topology.StartOrder() {
		names = append(names, s.Name)
	}
	return names
}()

// DefaultPorts are the ports of a local run: each service's from the
// topology (the README's configuration table), redis's, and user-service's
// internal listener (/internal/authenticate), apart from its public port,
// which monitoring reaches.
var DefaultPorts = func() map[string]int {
	m := map[string]int{topology.Redis: topology.RedisPort}
	for _, s := range topology.Services {
		m[s.Name] = s.Port
		if s.InternalPort != 0 {
			m[internalName(s.Name)] = s.InternalPort
		}
	}
	return m
}()

// internalName is the port map key of a service's internal listener.
func internalName(service string) string { return service + "-internal" }

// Options configure a stack.
type Options struct {
	// Root is the repository root (where go.work is).
	Root string
	// BinDir holds the built service binaries.
	BinDir string
	// DataDir holds the SQLite files and redis' working directory.
	DataDir string
	// Ports fixes ports by service; a missing or zero entry gets a free port.
	// For services with several replicas the port is the first replica's,
	// the others take the next free ports.
	Ports map[string]int
	// Replicas sets instance counts (default 1 each).
	Replicas map[string]int
	// Redis starts redis-server when it is installed; Redis == false or a
	// missing binary runs the stack without a cache.
	Redis bool
	// Env adds or overrides variables per service.
	Env map[string]map[string]string
	// Log receives every process's output, prefixed; nil discards it.
	Log io.Writer
	// ReadyTimeout bounds each process's start (default 30 s).
	ReadyTimeout time.Duration
}

// Stack is a running set of processes.
type Stack struct {
	opts      Options
	JWTSecret string
	// Redis is nil when the stack runs without redis.
	Redis *Proc
	mu    sync.Mutex
	procs map[string][]*Proc
	order []*Proc
}

// FindRoot walks up from dir to the directory holding go.work.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above " + dir)
		}
		dir = parent
	}
}

// Build compiles every service binary into binDir.
func Build(ctx context.Context, root, binDir string, extraArgs ...string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	args := append([]string{"build", "-o", binDir + string(os.PathSeparator)}, extraArgs...)
	for _, s := range Services {
		args = append(args, "./"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// FreePort returns a loopback port that is free now, chosen below the
// kernel's ephemeral range: a port the kernel hands out for ":0" is one it
// may also give to the next outgoing connection before the service that
// was meant to get it binds it (a busy machine makes that likely). Outside
// the range, only another explicit bind can take it.
func FreePort() (int, error) {
	lo := ephemeralLow() - 1
	for range 50 {
		p := freeFloor + mrand.IntN(lo-freeFloor)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeFloor is the lowest port FreePort picks: above the well-known and
// commonly configured ones.
const freeFloor = 20000

// ephemeralLow is the bottom of the kernel's ephemeral port range (Linux
// default 32768).
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > freeFloor+1000 {
				low = v
			}
		}
	}
	return low
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start starts redis (if asked and installed) and every service, each
// waited for until ready. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	s := &Stack{opts: opts, procs: map[string][]*Proc{}, JWTSecret: os.Getenv("JWT_SECRET")}
	if s.JWTSecret == "" {
		s.JWTSecret = randomSecret()
	}
	pw := &prefixWriter{w: opts.Log, width: 16}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}

	// Allocate every port first: services need each other's addresses.
	ports := map[string][]int{}
	taken := map[int]bool{}
	var internals []string
	for _, s := range topology.Services {
		if s.InternalPort != 0 {
			internals = append(internals, internalName(s.Name))
		}
	}
	for _, name := range slices.Concat([]string{topology.Redis}, Services, internals) {
		n := max(1, opts.Replicas[name])
		if svc, ok := strings.CutSuffix(name, "-internal"); ok {
			n = len(ports[svc])
		}
		for i := 0; i < n; i++ {
			p := 0
			if i == 0 {
				p = opts.Ports[name]
			}
			for p == 0 || taken[p] {
				fp, err := FreePort()
				if err != nil {
					return nil, err
				}
				p = fp
			}
			taken[p] = true
			ports[name] = append(ports[name], p)
		}
	}

	if opts.Redis {
		if path, err := exec.LookPath("redis-server"); err == nil {
			rp := ports["redis"][0]
			redisDir := filepath.Join(opts.DataDir, "redis")
			_ = os.MkdirAll(redisDir, 0o755)
			s.Redis = &Proc{
				Name: "redis", Service: "redis", Port: rp, URL: fmt.Sprintf("redis://127.0.0.1:%d", rp),
				bin: path,
				args: []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(rp), "--dir", redisDir,
					"--save", "", "--appendonly", "no", "--protected-mode", "yes"},
				logOut: pw, tail: newRing(40),
			}
			s.Redis.ready = func(ctx context.Context) error { return redisPing(ctx, rp) }
			if err := s.launch(ctx, s.Redis); err != nil {
				s.Stop(5 * time.Second)
				return nil, err
			}
		} else {
			fmt.Fprintln(opts.Log, "redis-server is not installed: running without a cache (user-service reports cache OFFLINE). Install it with: apt-get install redis-server")
		}
	}

	urls := func(name string) []string {
		var out []string
		for _, p := range ports[name] {
			out = append(out, fmt.Sprintf("http://127.0.0.1:%d", p))
		}
		return out
	}
	for _, name := range Services {
		for i, port := range ports[name] {
			inst := name
			if len(ports[name]) > 1 {
				inst = fmt.Sprintf("%s-%d", name, i+1)
			}
			env := s.serviceEnv(name, inst, port, ports, urls)
			for k, v := range opts.Env[name] {
				env[k] = v
			}
			p := &Proc{
				Name: inst, Service: name, Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port),
				bin: filepath.Join(opts.BinDir, name), env: envList(env), logOut: pw, tail: newRing(60),
			}
			p.ready = httpReady(p.URL + "/readyz")
			s.procs[name] = append(s.procs[name], p)
			if err := s.launch(ctx, p); err != nil {
				s.Stop(5 * time.Second)
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Stack) launch(ctx context.Context, p *Proc) error {
	if err := p.start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.order = append(s.order, p)
	s.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	return p.WaitReady(rctx)
}

// serviceEnv is the wiring of the stack, from the topology: every
// service's upstream variables point at the instances of this stack.
func (s *Stack) serviceEnv(name, inst string, port int, ports map[string][]int, urls func(string) []string) map[string]string {
	env := map[string]string{
		"LISTEN_ADDR":      fmt.Sprintf("127.0.0.1:%d", port),
		"INSTANCE_ID":      inst,
		"SHUTDOWN_TIMEOUT": "10s",
	}
	self := fmt.Sprintf("http://127.0.0.1:%d", port)
	svc := topology.Get(name)
	if svc.InternalPort != 0 {
		i := slices.Index(ports[name], port)
		env[svc.InternalVar] = fmt.Sprintf("127.0.0.1:%d", ports[internalName(name)][i])
	}
	if svc.Data != nil {
		env[svc.Data.Var] = filepath.Join(s.opts.DataDir, svc.Data.File)
	}
	if svc.JWT {
		env["JWT_SECRET"] = s.JWTSecret
	}
	for _, u := range svc.Upstreams {
		var v []string
		switch u.Form {
		case topology.URLs:
			target := u.Service
			if u.Internal {
				target = internalName(target)
			}
			v = urls(target)
		case topology.HostPort:
			// Without redis this is still the reserved port, where nothing
			// listens: the cache is reported OFFLINE rather than using
			// someone else's redis.
			v = []string{fmt.Sprintf("127.0.0.1:%d", ports[u.Service][0])}
		case topology.Targets:
			for _, t := range topology.Services {
				if t.Name == name {
					continue
				}
				for _, u := range urls(t.Name) {
					v = append(v, t.Name+"="+u)
				}
			}
		case topology.Peers:
			v = slices.DeleteFunc(urls(name), func(u string) bool { return u == self })
		}
		env[u.Var] = strings.Join(v, ",")
	}
	if name == "load-balancer" {
		// The dashboard is served from this port: its own origin.
		env["WS_ALLOWED_ORIGINS"] = fmt.Sprintf("http://localhost:%d,http://127.0.0.1:%d", port, port)
	}
	return env
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

var readyClient = &http.Client{Timeout: time.Second}

func httpReady(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := readyClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

func redisPing(ctx context.Context, port int) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "+PONG") {
		return fmt.Errorf("redis answered %q", buf[:n])
	}
	return nil
}

// Instances returns the processes of a service ("redis" included).
func (s *Stack) Instances(service string) []*Proc {
	if service == "redis" {
		if s.Redis == nil {
			return nil
		}
		return []*Proc{s.Redis}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs[service]...)
}

// Proc returns the first instance of a service.
func (s *Stack) Proc(service string) *Proc {
	if ps := s.Instances(service); len(ps) > 0 {
		return ps[0]
	}
	return nil
}

// URL is the base URL of the first instance of a service.
func (s *Stack) URL(service string) string {
	if p := s.Proc(service); p != nil {
		return p.URL
	}
	return ""
}

// DataDir is where the stack keeps users.db, posts.db and redis' files.
func (s *Stack) DataDir() string { return s.opts.DataDir }

// LB is the load balancer's base URL: the stack's public entry point.
func (s *Stack) LB() string { return s.URL("load-balancer") }

// Procs returns every process in start order.
func (s *Stack) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.order...)
}

// Stop stops every process in reverse start order, each with a SIGTERM and
// grace period, and returns the non-zero exit codes by instance name.
func (s *Stack) Stop(grace time.Duration) map[string]int {
	bad := map[string]int{}
	procs := s.Procs()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if !p.Running() {
			continue
		}
		if code := p.Stop(grace); code != 0 && p.Service != "redis" {
			bad[p.Name] = code
		}
	}
	return bad
}

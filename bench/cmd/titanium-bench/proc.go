package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"titanium/devstack"
)

// proc is a child process the bench starts itself (a lone load balancer,
// the trivial backend): own process group, killed if the bench dies.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer
}

// startProc starts bin with args and extra env on a free port (passed as
// LISTEN_ADDR and in args as {addr}) and waits until readyPath answers 200.
func startProc(ctx context.Context, name, bin string, args []string, env map[string]string, readyPath string) (*proc, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LISTEN_ADDR="+addr, "LOG_LEVEL=warn")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	tb := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = tb, tb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, url: "http://" + addr, cmd: cmd, done: make(chan struct{}), out: tb}
	go func() { _ = cmd.Wait(); close(p.done) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(p.url + readyPath)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start: %s", name, tb.String())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready within 15 s: %s", name, tb.String())
		}
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, and SIGKILL after 5 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startBackend runs the trivial backend as a child of this binary.
func startBackend(ctx context.Context) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(ctx, "backend", self, []string{"backend", "{addr}"}, nil, "/")
}

// startStockProxy runs a stock httputil.ReverseProxy in front of upstream,
// as a child of this binary.
func startStockProxy(ctx context.Context, upstream string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(ctx, "stock-proxy", self, []string{"stock-proxy", "{addr}", upstream}, nil, "/")
}

// startLB runs the load balancer binary alone in front of upstream, with
// its fasthttp front (the default) or on the net/http chain alone.
func startLB(ctx context.Context, bin, upstream string, trafficStats, fastPath bool) (*proc, error) {
	return startProc(ctx, "load-balancer", bin+"/load-balancer", nil, map[string]string{
		"INSTANCE_ID":      "bench-lb",
		"LB_API_UPSTREAMS": upstream,
		"LB_UI_UPSTREAMS":  upstream,
		"LB_STATS_TARGETS": "",
		"LB_PEERS":         "",
		"LB_TRAFFIC_STATS": strconv.FormatBool(trafficStats),
		"LB_FAST_PATH":     strconv.FormatBool(fastPath),
	}, "/readyz")
}

// procStatusKB reads a "VmRSS"-style field of /proc/<pid>/status in kB.
func procStatusKB(pid int, field string) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on Linux for every architecture we run on.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// tailBuffer keeps the last max bytes written (a child's log, for errors).
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > t.max {
		b := t.buf.Bytes()[t.buf.Len()-t.max:]
		t.buf = *bytes.NewBuffer(append([]byte(nil), b...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one supervised process of the stack: a service instance or redis.
type Proc struct {
	// Name is the instance name used in log prefixes, e.g. "api-gateway-2".
	Name string
	// Service is the service it is an instance of, e.g. "api-gateway".
	Service string
	// Port is the TCP port it listens on (127.0.0.1).
	Port int
	// URL is its base URL, http://127.0.0.1:Port.
	URL string

	bin    string
	args   []string
	env    []string
	logOut *prefixWriter
	ready  func(ctx context.Context) error

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	exitErr  error
	tail     *ring
	stopping bool
}

// StartProc starts bin with args and env (added to this process's) as a
// supervised process serving on port, and waits until GET readyPath there
// answers 200 or ctx ends. Its output is kept for Tail only.
func StartProc(ctx context.Context, name, bin string, args []string, env map[string]string, port int, readyPath string) (*Proc, error) {
	p := &Proc{
		Name: name, Service: name, Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port),
		bin: bin, args: args, env: envList(env), tail: newRing(60),
	}
	p.ready = httpReady(p.URL + readyPath)
	if err := p.start(); err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// TailFile returns the last n lines of a file, for error reports.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pid is the process id of the running process, 0 when not running.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// start launches the process; it does not wait for readiness.
func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	// Its own process group, so a terminal's Ctrl-C reaches only the runner,
	// which then stops every process in order (proc_linux.go: and the child
	// dies with the runner).
	cmd.SysProcAttr = SysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.stopping = false
	done := make(chan struct{})
	p.done = done
	go func() {
		p.copyLines(stdout)
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *Proc) copyLines(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.tail.add(line)
		if p.logOut != nil {
			p.logOut.line(p.Name, line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// Done is closed when the current process exits.
func (p *Proc) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// ExitCode is the exit code of the last exited process (-1 if killed by a
// signal, or if it has not exited).
func (p *Proc) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// Signal sends sig to the process (SIGSTOP and SIGCONT included).
func (p *Proc) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 {
		return errors.New("not running")
	}
	return syscall.Kill(pid, sig)
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGCONT) // a stopped process must run to die cleanly in tests
	_ = p.Signal(syscall.SIGKILL)
	<-p.Done()
}

// Stop sends SIGTERM and waits up to grace for the exit, then SIGKILLs. It
// returns the exit code (0 means a clean graceful shutdown).
func (p *Proc) Stop(grace time.Duration) int {
	if !p.Running() {
		return p.ExitCode()
	}
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	_ = p.Signal(syscall.SIGCONT)
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(grace):
		_ = p.Signal(syscall.SIGKILL)
		<-p.Done()
	}
	return p.ExitCode()
}

// Restart starts the process again (after it exited or was stopped) and
// waits until it is ready.
func (p *Proc) Restart(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("%s is still running", p.Name)
	}
	if err := p.start(); err != nil {
		return err
	}
	return p.WaitReady(ctx)
}

// WaitReady polls the readiness check until it passes, the process exits, or ctx ends.
func (p *Proc) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		last = p.ready(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited before it was ready (exit %d); last output:\n%s", p.Name, p.ExitCode(), p.Tail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v; last output:\n%s", p.Name, last, p.Tail())
		case <-tick.C:
		}
	}
}

// Tail returns the process's last output lines.
func (p *Proc) Tail() string { return p.tail.String() }

// ring keeps the last lines of a process's output for error reports.
type ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newRing(n int) *ring { return &ring{lines: make([]string, n)} }

func (r *ring) add(s string) {
	r.mu.Lock()
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if r.full {
		out = append(out, r.lines[r.next:]...)
	}
	out = append(out, r.lines[:r.next]...)
	return strings.Join(out, "\n")
}

// prefixWriter writes whole lines, each prefixed with its process name, so
// concurrent processes never interleave within a line.
type prefixWriter struct {
	mu    sync.Mutex
	w     io.Writer
	width int
}

func (pw *prefixWriter) line(name, s string) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	fmt.Fprintf(pw.w, "%-*s | %s\n", pw.width, name, s)
}

//go:build linux

package sockio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

const supported = true

// Conn is a *net.TCPConn whose Read and Write make raw system calls. Every
// other method (deadlines, addresses, Close, CloseWrite, SyscallConn...) is
// the TCPConn's.
type Conn struct {
	*net.TCPConn
	raw  syscall.RawConn
	r, w call
}

// call is one direction's state for the function RawConn runs: made once
// per connection, so that a Read or Write allocates nothing. mu keeps
// concurrent callers of one direction (which net.Conn allows) from sharing
// it; the descriptor serializes them anyway.
type call struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	sc := &Conn{TCPConn: tc, raw: raw}
	sc.r.fn, sc.w.fn = sc.r.read, sc.w.write
	return sc
}

// read makes one read(2); false asks RawConn to wait for readiness and
// call again.
func (o *call) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.p[0])), uintptr(len(o.p)))
		switch e {
		case 0:
			o.n = int(r)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
}

// write writes what is left of o.p; false asks RawConn to wait for room
// and call again.
func (o *call) write(fd uintptr) bool {
	for o.n < len(o.p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.p[o.n])), uintptr(len(o.p)-o.n))
		switch e {
		case 0:
			o.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
	return true
}

// run hands o.fn to do (the RawConn's Read or Write) for p and returns the
// bytes moved and the error number the calls ended with.
func (o *call) run(do func(func(uintptr) bool) error, p []byte) (int, syscall.Errno, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.errno = p, 0, 0
	err := do(o.fn)
	o.p = nil
	return o.n, o.errno, err
}

// Read reads like net.Conn's Read: at least one byte, io.EOF at the end of
// the stream, an *net.OpError otherwise (a deadline's satisfies
// os.ErrDeadlineExceeded).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := c.r.run(c.raw.Read, p)
	if err == nil && errno != 0 {
		err = c.opError("read", os.NewSyscallError("read", errno))
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, as net.Conn's Write does, or returns how much went
// and why the rest did not.
func (c *Conn) Write(p []byte) (int, error) {
	n, errno, err := c.w.run(c.raw.Write, p)
	if err == nil && errno != 0 {
		err = c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, err
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

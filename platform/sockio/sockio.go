// Package sockio reads and writes TCP sockets without the Go runtime's
// system-call hand-off.
//
// A read or write on a net.Conn goes through syscall.Syscall, which tells
// the scheduler the goroutine may block: if the call lasts past one tick of
// the runtime's monitor thread (sysmon, 20 µs) while every P is busy, the
// monitor takes the P away and wakes another thread to run it. Socket calls
// here never block (the descriptors are non-blocking), but on a virtual
// machine a loopback write, which runs the receiver's TCP stack inline, often
// lasts longer than that tick. Under load every such call then costs a
// thread wake-up and context switches, and keeps the monitor polling every
// 20 µs instead of backing off. A Conn makes the same non-blocking calls with
// syscall.RawSyscall (no hand-off) and waits for readiness in the runtime's
// poller as net.Conn does, so deadlines, Close and everything else behave as
// on the connection it wraps.
//
// SetEnabled is the process-wide switch (RAW_SOCKET_IO, read by
// platform/service); on systems other than Linux Wrap returns the
// connection unchanged.
package sockio

import (
	"context"
	"net"
	"sync/atomic"
)

// disabled is the switch, on by default.
var disabled atomic.Bool

// SetEnabled turns wrapping on or off for connections made from now on.
func SetEnabled(on bool) { disabled.Store(!on) }

// Enabled reports whether Wrap wraps.
func Enabled() bool { return supported && !disabled.Load() }

// Wrap returns c reading and writing with raw system calls when c is a
// *net.TCPConn and wrapping is enabled, otherwise c itself.
func Wrap(c net.Conn) net.Conn {
	if !Enabled() {
		return c
	}
	return wrap(c)
}

// Listener wraps every connection ln accepts.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// DialContext wraps every connection dial makes.
func DialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Wrap(c), nil
	}
}

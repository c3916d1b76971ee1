package fastproxy

import (
	"errors"
	"net"
	"syscall"
)

// errStaleConn: a pooled upstream connection turned out closed by the
// instance before a request was written on it.
var errStaleConn = errors.New("upstream closed the idle connection")

// guardedConn catches an upstream connection that the instance closed while
// it sat idle in the pool, as a graceful shutdown closes idle connections.
// Before a request that Forward does not retry (anything but GET, HEAD and
// OPTIONS) is written on a connection, a non-blocking peek tells whether the
// peer has closed it or sent something unasked. The write then fails with
// errStaleConn before a byte leaves, and Forward sends the request again on
// another connection: safe for any method, since the instance never saw it.
// (net/http's Transport learns the same from a reader goroutine it keeps on
// every idle connection.) GETs skip the peek: their retry covers them.
type guardedConn struct {
	net.Conn
	raw syscall.RawConn
	// inRequest is set from a request's first write until its response is
	// read; HostClient uses a connection from one goroutine at a time.
	inRequest bool
}

func guard(c net.Conn) net.Conn {
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &guardedConn{Conn: c, raw: raw}
}

func (c *guardedConn) Write(p []byte) (int, error) {
	if !c.inRequest {
		c.inRequest = true
		if !retriedMethod(p) && peerGone(c.raw) {
			return 0, errStaleConn
		}
	}
	return c.Conn.Write(p)
}

func (c *guardedConn) Read(p []byte) (int, error) {
	c.inRequest = false
	return c.Conn.Read(p)
}

// retriedMethod reports whether a request starting with p has a method
// Forward retries after a lost connection anyway.
func retriedMethod(p []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "OPTIONS "} {
		if len(p) >= len(m) && string(p[:len(m)]) == m {
			return true
		}
	}
	return false
}

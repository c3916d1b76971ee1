package service

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Front is a server that takes over the service's listener: it answers its
// hot routes itself and hands any other connection, with the request it was
// reading, to the service's net/http handler chain (Handoff). The load
// balancer's fasthttp proxy path is one.
type Front interface {
	// Serve accepts connections on ln until Shutdown.
	Serve(ln net.Listener) error
	// Shutdown stops accepting and waits for open connections to go idle
	// within ctx.
	Shutdown(ctx context.Context) error
}

// SetFront makes f serve the listener; the net/http server then serves only
// the connections f hands off. Call before Serve.
func (s *Server) SetFront(f Front) {
	s.front = f
	s.handoff = newConnListener(nil)
}

// Handoff gives c to the net/http server. c must replay the request the
// front had already read. It fails when the server is shutting down (c is
// then closed).
func (s *Server) Handoff(c net.Conn) error {
	if s.handoff == nil {
		c.Close()
		return errNoFront
	}
	return s.handoff.push(c)
}

var errNoFront = errors.New("service: Handoff without SetFront")

// Observe records a request the front served itself exactly as the
// instrumented handler chain records its own: RED metrics under route,
// the /stats window, and the access log at debug (warn for 5xx). detail
// gives the path and request id for the log; it runs only when the record
// is logged.
func (s *Server) Observe(route, method string, status int, d time.Duration, detail func() (path, requestID string)) {
	s.record(route, method, status, d)
	if level := logLevelFor(status); s.Logger.Enabled(context.Background(), level) {
		path, id := detail()
		s.logRequest(WithRequestID(context.Background(), id), level, route, method, path, status, d)
	}
}

// NewRequestID returns in when it is a sane request id, else a new one.
func NewRequestID(in string) string {
	if validRequestID(in) {
		return in
	}
	return newRequestID()
}

// connListener is a net.Listener fed by push: the net/http server accepts the
// connections a front hands it.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.done:
		c.Close()
		return net.ErrClosed
	}
}

// Accept implements net.Listener.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *connListener) Addr() net.Addr { return l.addr }

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end, over real
// loopback TCP.
func pair(t *testing.T) (client net.Conn, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := Listener(ln).Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := DialContext((&net.Dialer{Timeout: time.Second}).DialContext)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestWrapsOnLinux(t *testing.T) {
	c, s := pair(t)
	_, cw := c.(*Conn)
	_, sw := s.(*Conn)
	if want := runtime.GOOS == "linux"; cw != want || sw != want {
		t.Fatalf("wrapped client %v, server %v; want %v on %s", cw, sw, want, runtime.GOOS)
	}
	SetEnabled(false)
	defer SetEnabled(true)
	if _, ok := Wrap(c.(*Conn).TCPConn).(*Conn); ok && runtime.GOOS == "linux" {
		t.Fatal("Wrap wrapped while disabled")
	}
}

// A large transfer both ways at once: partial writes and waits for
// readiness on both sides, every byte in order.
func TestLargeTransferBothWays(t *testing.T) {
	c, s := pair(t)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	errs := make(chan error, 2)
	for _, conn := range []net.Conn{c, s} {
		go func() {
			n, err := conn.Write(data)
			if err == nil && n != len(data) {
				err = io.ErrShortWrite
			}
			errs <- err
		}()
	}
	for _, conn := range []net.Conn{c, s} {
		got := make([]byte, len(data))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("bytes differ")
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A Read or a Write on a wrapped connection allocates nothing: they run on
// every request of every hop.
func TestReadWriteDoNotAllocate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("nothing is wrapped here")
	}
	c, s := pair(t)
	out, in := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write and read; want 0", allocs)
	}
}

func TestEOFAfterCloseWrite(t *testing.T) {
	c, s := pair(t)
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v", got, err)
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the end: %d, %v; want 0, io.EOF", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, _ := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 16))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v; want a timeout satisfying os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("read returned after %v", d)
	}
}

// A blocked reader wakes with the right error when the connection's
// deadline moves into the past (as net/http stops its background read) or
// the connection closes.
func TestBlockedReadWakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		wake func(net.Conn) error
		want error
	}{
		{"past deadline", func(c net.Conn) error { return c.SetReadDeadline(time.Unix(1, 0)) }, os.ErrDeadlineExceeded},
		{"close", func(c net.Conn) error { return c.Close() }, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := pair(t)
			done := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 16))
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if err := tc.wake(c); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v; want %v", err, tc.want)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the blocked read did not return")
			}
		})
	}
}

func TestWriteToResetPeer(t *testing.T) {
	c, s := pair(t)
	s.(interface{ SetLinger(int) error }).SetLinger(0)
	s.Close()
	var err error
	deadline := time.Now().Add(2 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write(make([]byte, 64<<10))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("err %v; want a write *net.OpError", err)
	}
}

//go:build linux || darwin || freebsd

package fastproxy

import "syscall"

// peerGone peeks at the socket without blocking: an orderly close (0
// bytes), a reset, or unasked data all mean the connection must not carry
// a request.
func peerGone(raw syscall.RawConn) bool {
	gone := false
	var b [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = err == nil && n >= 0 || err == syscall.ECONNRESET
		return true // never wait for readiness
	})
	return gone
}

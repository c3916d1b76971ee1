//go:build !(linux || darwin || freebsd)

package fastproxy

import "syscall"

// peerGone cannot peek on this platform: a stale connection is found when
// the request fails.
func peerGone(syscall.RawConn) bool { return false }

//go:build !linux

package sockio

import "net"

const supported = false

func wrap(c net.Conn) net.Conn { return c }

//go:build unix && !linux

package devstack

import "syscall"

// SysProcAttr is what every supervised child gets: its own process group.
// Only Linux has Pdeathsig: elsewhere a child outlives a runner killed with
// SIGKILL (a runner that gets SIGTERM or Ctrl-C still stops every child).
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

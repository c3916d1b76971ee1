package devstack

import "syscall"

// SysProcAttr is what every supervised child gets: its own process group,
// and Pdeathsig kills it if the runner itself dies, so no orphan outlives it.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

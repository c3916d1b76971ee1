package devstack

import "syscall"

// sysProcAttr puts a child in its own process group, and Pdeathsig kills it
// if the runner itself dies, so no orphan outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

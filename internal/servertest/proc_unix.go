//go:build unix && !linux

package servertest

import (
	"os/exec"
	"syscall"
)

// KillWithParent arranges for the process cmd starts to be killed with
// SIGKILL when the process that started it exits. Only Linux can do that
// (the parent-death signal); here it does nothing, and a server outlives a
// test binary that dies without its cleanups.
func KillWithParent(cmd *exec.Cmd) {}

// ownProcessGroup starts cmd in a process group of its own, so that a
// Ctrl-C at the terminal, which signals the whole foreground group, stops
// the tests but leaves the servers to be stopped by whoever started them.
func ownProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

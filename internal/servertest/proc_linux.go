package servertest

import (
	"os/exec"
	"syscall"
)

// KillWithParent arranges for the process cmd starts to be killed with
// SIGKILL when the process that started it exits, however it exits, so a
// test binary or launcher that dies leaves no server behind. On Linux this
// is the parent-death signal (prctl PR_SET_PDEATHSIG, set through
// syscall.SysProcAttr.Pdeathsig); elsewhere it does nothing. Call it before
// cmd.Start.
func KillWithParent(cmd *exec.Cmd) {
	sysProcAttr(cmd).Pdeathsig = syscall.SIGKILL
}

// ownProcessGroup starts cmd in a process group of its own, so that a
// Ctrl-C at the terminal, which signals the whole foreground group, stops
// the tests but leaves the servers to be stopped by whoever started them
// (they die with it at the latest: KillWithParent).
func ownProcessGroup(cmd *exec.Cmd) {
	sysProcAttr(cmd).Setpgid = true
}

func sysProcAttr(cmd *exec.Cmd) *syscall.SysProcAttr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	return cmd.SysProcAttr
}

//go:build !linux

package servertest

import "os/exec"

// KillWithParent arranges for the process cmd starts to be killed when the
// process that started it exits. Only Linux can do that (the parent-death
// signal); here it does nothing, and a server outlives a test binary that
// dies without running its cleanups.
func KillWithParent(cmd *exec.Cmd) {}

// ownProcessGroup does nothing: without the parent-death signal, a server
// had better get the terminal's Ctrl-C with the tests.
func ownProcessGroup(cmd *exec.Cmd) {}

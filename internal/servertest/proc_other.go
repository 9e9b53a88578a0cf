//go:build !unix

package servertest

import "os/exec"

// KillWithParent arranges for the process cmd starts to be killed when the
// process that started it exits. Only Linux can do that (the parent-death
// signal); here it does nothing.
func KillWithParent(cmd *exec.Cmd) {}

// ownProcessGroup does nothing where there are no Unix process groups.
func ownProcessGroup(cmd *exec.Cmd) {}

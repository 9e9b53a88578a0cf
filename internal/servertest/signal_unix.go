//go:build unix

package servertest

import (
	"os"
	"syscall"
)

// The signals that wedge a server and let it go again.
var (
	pauseSignal  os.Signal = syscall.SIGSTOP
	resumeSignal os.Signal = syscall.SIGCONT
)

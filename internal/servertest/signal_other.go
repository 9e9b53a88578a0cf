//go:build !unix

package servertest

import "os"

// Without SIGSTOP and SIGCONT a server cannot be paused: Pause and Resume
// return errors.ErrUnsupported.
var pauseSignal, resumeSignal os.Signal

//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos)

package mcbin

// peeker is a no-op where a non-blocking peek is not available; stale
// connections are then found by the retry of idempotent calls.
type peeker struct{}

func newPeeker(any) *peeker { return nil }

func (p *peeker) check() error { return nil }

//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package stores

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// crossProcessLocks reports whether openLocked excludes other processes.
const crossProcessLocks = true

// openLocked opens the file at path, creating it if needed, and takes an
// exclusive flock(2) on it, which closing the file releases. flock locks
// belong to the open file, so they exclude other processes and other
// opens in this one. It polls rather than blocks so that ctx (its
// cancellation, or its deadline: a store call's context may carry one
// that nothing signals) can end the wait.
func openLocked(ctx context.Context, path string) (*os.File, error) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	rc, err := fh.SyscallConn()
	if err != nil {
		fh.Close()
		return nil, err
	}
	flock := func(how int) (err error) {
		if cerr := rc.Control(func(fd uintptr) { err = syscall.Flock(int(fd), how) }); cerr != nil {
			return cerr
		}
		return err
	}
	delay := 50 * time.Microsecond
	for {
		err := flock(syscall.LOCK_EX | syscall.LOCK_NB)
		if err == nil {
			return fh, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			fh.Close()
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			fh.Close()
			return nil, context.DeadlineExceeded
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			fh.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Millisecond)
	}
}

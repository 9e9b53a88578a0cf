package stores

import (
	"context"
	"errors"
	"time"
)

// errDropPending says that the removal of the keys a failed write may have
// left behind goes on in the background: the caller had no time left to
// wait for it.
var errDropPending = errors.New("the removal goes on in the background")

// dropAfterFailedWrite runs drop, which removes the keys a failed write
// may have left with their previous values (see Failed writes in the
// package doc), with a context of its own bounded by timeout: the write's
// own context may be what ended it. The caller waits for drop while its
// context allows; when that ends first (cancelled, or its deadline
// passed, which a deadline-only context does not signal by itself), drop
// goes on in the background and dropAfterFailedWrite returns
// errDropPending, so that a failed write never keeps its caller past its
// deadline.
func dropAfterFailedWrite(ctx context.Context, timeout time.Duration, drop func(context.Context) error) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	dl, hasDeadline := ctx.Deadline()
	if ctx.Done() == nil && !hasDeadline {
		defer cancel()
		return drop(dctx)
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- drop(dctx)
	}()
	var expired <-chan time.Time
	if hasDeadline {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	case <-expired:
	}
	return errDropPending
}

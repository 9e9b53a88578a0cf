package core

import (
	"sync/atomic"
	"time"
)

// A Cache has two circuit breakers over its store, one for reads (Get,
// GetMany) and one for writes (Set, SetMany, Add, Delete, Incr), so that
// writes that fail (a full or read-only directory, a server refusing
// writes) never stop reads that succeed. An open read breaker skips
// writes too: a store that cannot be read from is taken to be down.
//
// A breaker opens after BreakerThreshold consecutive failures, or when
// most calls have been slow, over half the store timeout, for
// slowWindows windows of slowWindow in a row: a store that answers just
// under the timeout costs every request that much, so it is treated like
// one that fails. While a breaker is open its calls are skipped, and the
// cache probes the store in the background (probe.go) until it answers
// quickly again; no request waits for it or pays for the probes.

// Slow-store detection: a breaker opens once, in slowWindows windows of
// slowWindow in a row, more than half of the calls were slow.
const (
	slowWindow  = time.Second
	slowWindows = 2
)

// breaker is the circuit breaker over one kind of call. The closed path
// costs two atomic loads, with no lock.
//
// A breaker knows nothing of errors: its owner decides what is a success
// (the store answered, a miss or a refusal included), what is a failure
// and what is neither (a caller that gave up, one server of several down).
// Its zero value never opens; configure sets its bounds. It is safe for
// concurrent use.
type breaker struct {
	threshold int64 // consecutive failures that open it; 0: never opens
	slow      int64 // nanoseconds from which a call is slow; 0: none is

	open     atomic.Bool
	failures atomic.Int64 // consecutive failures

	// The current slow window, started by a slow call; 0: none.
	window   atomic.Int64 // unix nanos it started
	calls    atomic.Int64 // calls ended in it
	slowOnes atomic.Int64 // slow calls among them
	slowRun  atomic.Int64 // windows in a row where most calls were slow
}

// configure sets the bounds and closes the breaker: threshold <= 0 means
// it never opens, and calls that take slow or longer are slow.
func (b *breaker) configure(threshold int, slow time.Duration) {
	b.threshold = int64(max(threshold, 0))
	b.slow = int64(slow)
	b.close()
}

// isOpen reports whether calls are skipped.
func (b *breaker) isOpen() bool { return b.open.Load() }

// answered records a call the store answered, which took took, at now
// (unix nanos). It reports whether the call opened the breaker (most calls
// slow for too long).
func (b *breaker) answered(now int64, took time.Duration) (opened bool) {
	slow := b.slow > 0 && int64(took) >= b.slow
	if !slow && b.failures.Load() != 0 {
		b.failures.Store(0) // a slow answer does not end a run of failures
	}
	return b.timed(now, slow)
}

// failure records a failed call, which took took, at now. It returns the
// number of consecutive failures when this one opened the breaker, else
// 0; slow reports whether it opened it by slowness instead.
func (b *breaker) failure(now int64, took time.Duration) (opened int64, slow bool) {
	if b.threshold == 0 {
		return 0, false
	}
	if n := b.failures.Add(1); n >= b.threshold && b.trip() {
		return n, false
	}
	// A failure that took long (a timeout) is slow too.
	return 0, b.timed(now, b.slow > 0 && int64(took) >= b.slow)
}

// timed feeds the slow-store detection with one call at now, and reports
// whether it opened the breaker. Until a slow call starts a window, a
// call costs one atomic load.
func (b *breaker) timed(now int64, slow bool) (opened bool) {
	if b.threshold == 0 {
		return false
	}
	w := b.window.Load()
	if w == 0 {
		if !slow {
			return false
		}
		if b.window.CompareAndSwap(0, now) {
			w = now
		} else if w = b.window.Load(); w == 0 {
			return false // closed meanwhile
		}
	}
	b.calls.Add(1)
	if slow {
		b.slowOnes.Add(1)
	}
	if now-w < int64(slowWindow) || !b.window.CompareAndSwap(w, now) {
		return false // the window goes on, or another call is ending it
	}
	// This call ends the window (the counts are approximate: calls of the
	// next one may land in them).
	calls, slowOnes := b.calls.Swap(0), b.slowOnes.Swap(0)
	if 2*slowOnes <= calls {
		b.slowRun.Store(0)
		b.window.CompareAndSwap(now, 0) // back to the one-load path
		return false
	}
	if b.slowRun.Add(1) < slowWindows {
		return false
	}
	return b.trip()
}

// trip opens the breaker and reports whether this call opened it.
func (b *breaker) trip() bool {
	if !b.open.CompareAndSwap(false, true) {
		return false
	}
	b.resetCounts()
	return true
}

// close closes the breaker, as when a probe found the store answering.
// It reports whether it was open.
func (b *breaker) close() bool {
	b.resetCounts()
	return b.open.Swap(false)
}

func (b *breaker) resetCounts() {
	b.failures.Store(0)
	b.window.Store(0)
	b.calls.Store(0)
	b.slowOnes.Store(0)
	b.slowRun.Store(0)
}

// BreakerOpen reports whether a circuit breaker is skipping the store,
// for reads or for writes.
func (c *Cache) BreakerOpen() bool { return c.reads.isOpen() || c.writes.isOpen() }

// ReadsOpen reports whether the read breaker is open: every call is
// skipped.
func (c *Cache) ReadsOpen() bool { return c.reads.isOpen() }

// WritesOpen reports whether the write breaker is open: writes are
// skipped, reads go on.
func (c *Cache) WritesOpen() bool { return c.writes.isOpen() }

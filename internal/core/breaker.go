package core

import (
	"sync/atomic"
	"time"
)

// breaker is a circuit breaker over one store: after threshold consecutive
// failures it opens for cooldown, during which calls are skipped; then one
// call at a time goes through as a probe, and the first success closes it.
// The closed path is two atomic loads, with no lock.
//
// A breaker knows nothing of errors: its owner decides what is a success
// (the store answered, a miss or a refusal included), what is a failure and
// what is neither (a caller that gave up, one server of several down). Its
// zero value never opens; configure sets its bounds. It is safe for
// concurrent use.
type breaker struct {
	threshold int64         // consecutive failures that open it; 0: never
	cooldown  time.Duration // how long it stays open before a probe

	failures  atomic.Int64 // consecutive failures
	openUntil atomic.Int64 // unix nanos until which it is open; 0: closed
	probing   atomic.Bool  // a probe is in flight
}

// configure sets the bounds and closes the breaker. threshold < 0 means
// never open.
func (b *breaker) configure(threshold int, cooldown time.Duration) {
	b.threshold = int64(max(threshold, 0))
	b.cooldown = cooldown
	b.failures.Store(0)
	b.openUntil.Store(0)
}

// allow reports whether a call may go to the store at now (unix nanos),
// and whether it is the probe of an open breaker, which the caller ends
// with endProbe once it knows the outcome.
func (b *breaker) allow(now int64) (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if now < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

// endProbe lets the next probe through.
func (b *breaker) endProbe() { b.probing.Store(false) }

// success records a call the store answered. It reports whether the call
// closed an open breaker.
func (b *breaker) success() (closed bool) {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		return true
	}
	return false
}

// failure records a failed call at now. It returns the number of
// consecutive failures when this one opened the breaker, else 0.
func (b *breaker) failure(now int64) (opened int64) {
	if b.threshold == 0 {
		return 0
	}
	n := b.failures.Add(1)
	if n < b.threshold {
		return 0
	}
	if b.openUntil.Swap(now+int64(b.cooldown)) == 0 {
		return n
	}
	return 0
}

// BreakerOpen reports whether the circuit breaker is skipping the store.
func (c *Cache) BreakerOpen() bool { return c.brk.openUntil.Load() != 0 }

// EndCooldown lets the next call probe an open breaker at once, as if its
// cooldown had passed.
func (c *Cache) EndCooldown() {
	if c.brk.openUntil.Load() != 0 {
		c.brk.openUntil.Store(1)
	}
}

package core

import (
	"context"
	"errors"
	"time"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
)

// While a breaker is open, the cache probes the store itself, in the
// background, every BreakerCooldown (200 ms by default): a read breaker
// with a Get of probeKey, a write breaker with a Set of it that expires
// after a second. A probe that the store answers within half the store
// timeout closes its breaker, so a store that comes back is used again
// within about one cooldown of its return, whatever the traffic: no
// request waits for a probe, and no request is needed to make one. The
// probes go through the store's own calls, so a store that skips a server
// of its own (a memcached pool, a Redis Cluster) is used again when it
// would serve again, not before.
//
// One prober runs per Cache, while a breaker is open. It stops when both
// are closed (Init closes them when it sets a store) or when the store is
// closed (a probe fails with stores.ErrClosed).

// probeKey is the key the probes read and write.
const probeKey = keyspace.Health + "probe"

// probeTTL is the lifetime of what a write probe stores.
const probeTTL = time.Second

// opened logs that brk opened, after n failures in a row whose last was
// err, or, with n == 0, because most calls were slow, and starts the
// prober.
func (c *Cache) opened(brk *breaker, n int64, err error) {
	switch {
	case n == 0:
		what := "store calls"
		if brk == &c.writes {
			what = "writes to the store"
		}
		c.Logf("most %s took over %v for %v; skipping them, probing the store every %v",
			what, time.Duration(brk.slow), slowWindows*slowWindow, c.cooldown())
	case brk == &c.writes:
		c.Logf("writes to the store failed %d times in a row; skipping writes, probing them every %v: %v", n, c.cooldown(), err)
	default:
		c.Logf("store failed %d times in a row; skipping it, probing it every %v: %v", n, c.cooldown(), err)
	}
	c.startProbing()
}

// startProbing starts the prober unless it runs.
func (c *Cache) startProbing() {
	if c.probing.CompareAndSwap(false, true) {
		go c.probeLoop()
	}
}

// probeLoop probes the store every cooldown while a breaker is open.
func (c *Cache) probeLoop() {
	tick := time.NewTicker(c.cooldown())
	defer tick.Stop()
	for {
		for c.BreakerOpen() {
			<-tick.C
			r := c.store.Load() // Init may have replaced it
			if r == nil || !c.probeOnce(r) {
				c.probing.Store(false)
				return
			}
		}
		c.probing.Store(false)
		// A breaker that opened after the check above found the prober
		// still running and left the probing to it.
		if !c.BreakerOpen() || !c.probing.CompareAndSwap(false, true) {
			return
		}
	}
}

// ProbeNow probes the store once for each open breaker, at once, the way
// the prober does every BreakerCooldown.
func (c *Cache) ProbeNow() {
	if r := c.store.Load(); r != nil {
		c.probeOnce(r)
	}
}

// probeOnce probes each open breaker once, closing those whose probe the
// store answered quickly. It reports false when the store is closed.
func (c *Cache) probeOnce(r *storeRef) bool {
	if c.reads.isOpen() {
		ok, closed := c.probe(func(ctx context.Context) error {
			_, err := r.s.Get(ctx, probeKey)
			return err
		})
		if closed {
			return false
		}
		if ok && c.reads.close() {
			c.Logf("store answers again; circuit breaker closed")
		}
	}
	if c.writes.isOpen() && !c.reads.isOpen() {
		ok, closed := c.probe(func(ctx context.Context) error {
			return r.s.Set(ctx, probeKey, []byte("probe"), probeTTL)
		})
		if closed {
			return false
		}
		if ok && c.writes.close() {
			c.Logf("store takes writes again; write circuit breaker closed")
		}
	}
	return true
}

// probe runs one probe call, bounded by the store timeout, and reports
// whether the store answered it within half the timeout. A miss is an
// answer, and so is a stores.ErrNodeDown: some servers of the store
// answer, and the store skips the others itself.
func (c *Cache) probe(call func(ctx context.Context) error) (ok, closed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), c.storeTimeout())
	defer cancel()
	start := time.Now()
	err := call(ctx)
	if errors.Is(err, stores.ErrClosed) {
		return false, true
	}
	answered := err == nil || errors.Is(err, stores.ErrNotFound) || errors.Is(err, stores.ErrNodeDown)
	return answered && time.Since(start) < c.storeTimeout()/2, false
}

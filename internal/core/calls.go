package core

import (
	"context"
	"errors"
	"time"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/stores"
)

// acquire returns the store and a context for one call, or an error when
// there is no store or the breaker is open. done must be called with the
// call's error.
func (c *Cache) acquire(ctx context.Context) (stores.Store, context.Context, func(error), error) {
	r := c.store.Load()
	if r == nil {
		return nil, ctx, nopDone, ErrNoStore
	}
	if r.local {
		return r.s, ctx, r.done, nil
	}
	ok, probe := c.brk.allow(time.Now().UnixNano())
	if !ok {
		c.stats.StoreErrors.Add(1)
		return nil, ctx, nopDone, ErrStoreUnavailable
	}
	start := c.callStart()
	tctx, cancel := context.WithTimeout(ctx, c.storeTimeout())
	return r.s, tctx, func(err error) {
		cancel()
		if probe {
			c.brk.endProbe()
		}
		c.record(ctx, err)
		c.observeCall(ctx, start, err)
	}, nil
}

func nopDone(error) {}

// localDone counts and logs the failures of an in-process store (ErrClosed,
// say; refusals such as ErrTooLarge are the caller's to count). Such a
// store has no timeout and no breaker: it answers or fails at once.
func (c *Cache) localDone(err error) {
	if err == nil {
		return
	}
	if refused(err) {
		c.countRefusal(err)
		return
	}
	if err != nil && !errors.Is(err, stores.ErrNotFound) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		c.storeError(err)
	}
}

// refused reports whether err is the store refusing one value (too large
// for it, or not a counter) or a call it has no way to make (Incr on a
// store without stores.Incrementer) rather than failing: the store answered, so
// such an error says nothing about the store's health and never feeds the
// circuit breaker.
func refused(err error) bool {
	return errors.Is(err, stores.ErrTooLarge) || errors.Is(err, stores.ErrNotInteger) ||
		errors.Is(err, errors.ErrUnsupported)
}

// countRefusal counts a value the store refused as too large as the bypass
// BypassTooLarge. (ErrNotInteger goes back to the Incr caller, whose
// question it answers.)
func (c *Cache) countRefusal(err error) {
	if errors.Is(err, stores.ErrTooLarge) {
		c.CountBypass(BypassTooLarge)
	}
}

// record feeds the breaker and the stats with one call's outcome.
func (c *Cache) record(parent context.Context, err error) {
	if err == nil {
		if c.brk.success() {
			c.Logf("store answers again; circuit breaker closed")
		}
		c.drainUnsettled()
		return
	}
	if refused(err) {
		c.countRefusal(err)
		err = nil
	}
	if err == nil || errors.Is(err, stores.ErrNotFound) {
		if c.brk.success() {
			c.Logf("store answers again; circuit breaker closed")
		}
		c.drainUnsettled()
		return
	}
	if parent.Err() != nil {
		return // the caller gave up; not the store's fault
	}
	c.storeError(err)
	if errors.Is(err, stores.ErrNodeDown) {
		// One server of a store spread over several failed: its keys miss,
		// the other servers' keys are served. The store's own per-server
		// breaker skips it; ours stays as it is for the whole store.
		return
	}
	if n := c.brk.failure(time.Now().UnixNano()); n > 0 {
		c.Logf("store failed %d times in a row; skipping it for %v: %v", n, c.brk.cooldown, err)
	}
}

// storeError counts and logs a store error.
func (c *Cache) storeError(err error) {
	c.stats.StoreErrors.Add(1)
	c.Logf("store error (serving uncached): %v", err)
}

// The guarded store calls below are what every feature uses. They apply the
// store timeout and the breaker. A miss is stores.ErrNotFound; any other
// error means the store could not answer. The writes undo what they can
// when they fail, and the reads treat the keys they could not undo as
// misses (see unsettled.go).

// Get reads key. A miss is stores.ErrNotFound; any other error means the
// store could not answer (logged and counted).
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if c.unsettled.n.Load() != 0 && c.unsettledRead(ctx, key) {
		return nil, stores.ErrNotFound
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.Get(sctx, key)
	done(err)
	return v, err
}

// View is Get for callers that never modify the value: with a
// viewer (see Cache.viewer) it reads the store's own bytes instead of a
// copy, with the value's memo (nil without a viewer, or when the store
// keeps none), and completes the call like the other local calls.
// View is Get for callers that never modify the value: with viewer (see
// Cache.Viewer) it reads the store's own bytes instead of a copy, with the
// value's memo (nil without a viewer, or when the store keeps none).
func (c *Cache) View(ctx context.Context, viewer inproc.ViewFunc, key string) ([]byte, *inproc.Memo, error) {
	if viewer == nil {
		v, err := c.Get(ctx, key)
		return v, nil, err
	}
	if c.unsettled.n.Load() != 0 && c.unsettledRead(ctx, key) {
		return nil, nil, stores.ErrNotFound
	}
	v, memo, err := viewer(ctx, key)
	if err != nil {
		c.localDone(err)
	}
	return v, memo, err
}

// GetMany reads keys; absent keys are absent from the map. With
// stores.ErrNodeDown the map holds the values of the servers that answered.
func (c *Cache) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	var skip []string
	if c.unsettled.n.Load() != 0 {
		live := make([]string, 0, len(keys))
		for _, k := range keys {
			if c.unsettled.has(k) {
				skip = append(skip, k)
			} else {
				live = append(live, k)
			}
		}
		if len(skip) > 0 {
			if c.removeKeys(ctx, skip) == nil {
				c.unsettled.settle(skip...)
			}
			keys = live
		}
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	v, err := stores.GetMany(sctx, s, keys)
	done(err)
	return v, err // with stores.ErrNodeDown, v holds the healthy servers' values
}

// Set writes key; when it fails, the key is removed or left unsettled.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s, sctx, done, err := c.acquire(ctx)
	if err == nil {
		err = s.Set(sctx, key, value, ttl)
		done(err)
	}
	if err != nil {
		c.writeFailed(ctx, err, []string{key})
		return err
	}
	c.unsettled.settle(key)
	return nil
}

// SetMany writes items; when it fails, their keys are removed or left
// unsettled.
func (c *Cache) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	s, sctx, done, err := c.acquire(ctx)
	if err == nil {
		err = stores.SetMany(sctx, s, items, ttl)
		done(err)
	}
	if err != nil || c.unsettled.n.Load() != 0 {
		keys := make([]string, 0, len(items))
		for k := range items {
			keys = append(keys, k)
		}
		if err != nil {
			c.writeFailed(ctx, err, keys)
			return err
		}
		c.unsettled.settle(keys...)
	}
	return nil
}

// Add writes key if it is absent, and reports whether it did.
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := c.settleBefore(ctx, key); err != nil {
		return false, err
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return false, err
	}
	ok, err := s.Add(sctx, key, value, ttl)
	done(err)
	return ok, err
}

// Delete removes keys; when it fails, they are left unsettled.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	s, sctx, done, err := c.acquire(ctx)
	if err == nil {
		if len(keys) == 1 {
			err = s.Delete(sctx, keys[0])
		} else {
			err = stores.DeleteMany(sctx, s, keys)
		}
		done(err)
	}
	if err != nil {
		c.writeFailed(ctx, err, keys)
		return err
	}
	c.unsettled.settle(keys...)
	return nil
}

// Incr adds delta to the counter under key (stores.Incr).
func (c *Cache) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := c.settleBefore(ctx, key); err != nil {
		return 0, err
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return 0, err
	}
	n, err := stores.Incr(sctx, s, key, delta)
	done(err)
	return n, err
}

// Clear removes every entry of the cache's store namespace. Unlike the
// other calls it returns the store's error.
func (c *Cache) Clear(ctx context.Context) error {
	r := c.store.Load()
	if r == nil {
		return ErrNoStore
	}
	if err := r.s.Clear(ctx); err != nil {
		return err
	}
	c.unsettled.reset() // nothing is left to remove
	return nil
}

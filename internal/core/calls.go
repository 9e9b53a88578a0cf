package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/echocache/echocache/internal/deadline"
	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/stores"
)

// kind says which breaker a call answers to.
type kind uint8

const (
	read  kind = iota // Get, GetMany: the read breaker
	write             // Set, SetMany, Add, Delete, Incr: the write breaker, and the read one
)

// call is one guarded store call under way: acquire starts it, end
// records its outcome.
type call struct {
	c      *Cache
	parent context.Context // the caller's
	brk    *breaker        // nil: an in-process store, no breaker
	budget *budgetCtx      // the request's, or nil
	start  time.Time
	cancel context.CancelFunc // of a context.WithDeadline, or nil
}

// acquire returns the store and the context for one call of kind k, or an
// error when there is no store, a breaker skips the store, or the
// request's budget is spent. The call must be ended with end.
//
// A networked store's call gets a deadline: the store timeout, or what the
// request's budget has left. A store that honours a deadline alone
// (internal/deadline) gets it without a timer.
func (c *Cache) acquire(ctx context.Context, k kind) (stores.Store, context.Context, call, error) {
	r := c.store.Load()
	if r == nil {
		return nil, ctx, call{}, ErrNoStore
	}
	if r.local {
		return r.s, ctx, call{c: c, parent: ctx}, nil
	}
	brk := &c.reads
	if k == write {
		if c.reads.isOpen() {
			c.stats.StoreErrors.Add(1)
			return nil, ctx, call{}, ErrStoreUnavailable
		}
		brk = &c.writes
	}
	if brk.isOpen() {
		c.stats.StoreErrors.Add(1)
		return nil, ctx, call{}, ErrStoreUnavailable
	}
	b := budgetOf(ctx)
	d, ok := c.allowance(b)
	if !ok {
		return nil, ctx, call{}, ErrBudgetSpent
	}
	cl := call{c: c, parent: ctx, brk: brk, budget: b, start: time.Now()}
	dl := cl.start.Add(d)
	if r.timerless {
		return r.s, deadline.With(ctx, dl), cl, nil
	}
	sctx, cancel := context.WithDeadline(ctx, dl)
	cl.cancel = cancel
	return r.s, sctx, cl, nil
}

// end records the outcome err of the call and returns the error its caller
// gets: err, or, when the caller's context has ended, an error wrapping
// ErrCallerGone and the context's error.
func (cl *call) end(err error) error {
	c := cl.c
	if cl.brk == nil {
		c.localDone(err)
	} else {
		took := time.Since(cl.start)
		if cl.cancel != nil {
			cl.cancel()
		}
		cl.budget.spend(took)
		c.record(cl.parent, cl.brk, took, err)
		c.observeCall(cl.parent, cl.start, err)
	}
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		if cerr := cl.parent.Err(); cerr != nil {
			return fmt.Errorf("%w: %w (%w)", ErrCallerGone, cerr, err)
		}
	}
	return err
}

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
	if !errors.Is(err, stores.ErrNotFound) &&
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

// record feeds brk and the stats with the outcome err of a call that took
// took, made for the caller's context parent.
func (c *Cache) record(parent context.Context, brk *breaker, took time.Duration, err error) {
	now := time.Now().UnixNano()
	switch {
	case err == nil || errors.Is(err, stores.ErrNotFound) || refused(err):
		// The store answered (a miss, a refusal of one value included).
		if err != nil {
			c.countRefusal(err)
		}
		if brk.answered(now, took) {
			c.opened(brk, 0, nil)
		}
		if !c.writes.isOpen() {
			c.drainUnsettled()
		}
	case parent.Err() != nil:
		// The caller gave up: not the store's fault.
	case errors.Is(err, stores.ErrNodeDown):
		// One server of a store spread over several failed: its keys miss,
		// the other servers' keys are served. The store's own per-server
		// breaker skips it; ours stays as it is for the whole store.
		c.storeError(err)
	default:
		c.storeError(err)
		if n, slow := brk.failure(now, took); n > 0 || slow {
			c.opened(brk, n, err)
		}
	}
}

// storeError counts and logs a store error.
func (c *Cache) storeError(err error) {
	c.stats.StoreErrors.Add(1)
	c.Logf("store error (serving uncached): %v", err)
}

// The guarded store calls below are what every feature uses. They apply the
// store timeout (or the request's budget) and the breakers. A miss is
// stores.ErrNotFound; any other error means the store could not answer,
// or, wrapping ErrCallerGone, that the caller's context ended. The writes
// undo what they can when they fail, and the reads treat the keys they
// could not undo as misses (see unsettled.go).

// Get reads key. A miss is stores.ErrNotFound; any other error means the
// store could not answer (logged and counted).
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if c.unsettled.n.Load() != 0 && c.unsettledRead(ctx, key) {
		return nil, stores.ErrNotFound
	}
	if v, _, ok := c.near(key); ok {
		if record.Is(v, record.Compressed) {
			return c.decompress(ctx, key, v) // a new slice
		}
		return append([]byte{}, v...), nil
	}
	s, sctx, cl, err := c.acquire(ctx, read)
	if err != nil {
		return nil, err
	}
	v, err := s.Get(sctx, key)
	if err = cl.end(err); err != nil {
		return v, err
	}
	return c.decompress(ctx, key, v)
}

// near returns the in-process copy of key that a networked store keeps
// (see inproc.NearFunc): a read it answers makes no round trip, so it
// needs no timeout and no breaker. The slice must not be modified.
func (c *Cache) near(key string) ([]byte, *inproc.Memo, bool) {
	if r := c.store.Load(); r != nil && r.near != nil {
		return r.near(key)
	}
	return nil, nil, false
}

// View is Get for callers that never modify the value: with viewer (see
// Cache.Viewer) it reads the store's own bytes instead of a copy, with the
// value's memo (nil without a viewer, or when the store keeps none). A
// networked store's in-process copy (see near) is read the same way, with
// its memo: without a viewer, a memo says the bytes came from such a copy.
func (c *Cache) View(ctx context.Context, viewer inproc.ViewFunc, key string) ([]byte, *inproc.Memo, error) {
	if viewer == nil {
		if c.unsettled.n.Load() == 0 {
			if v, memo, ok := c.near(key); ok {
				return c.viewed(ctx, key, v, memo, nil)
			}
		}
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
	return c.viewed(ctx, key, v, memo, err)
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
	s, sctx, cl, err := c.acquire(ctx, read)
	if err != nil {
		return nil, err
	}
	v, err := stores.GetMany(sctx, s, keys)
	err = cl.end(err) // with stores.ErrNodeDown, v holds the healthy servers' values
	c.decompressAll(ctx, v)
	return v, err
}

// Set writes key; when it fails, the key is removed or left unsettled.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	value = c.compress(value) // before acquire: not the store's time
	s, sctx, cl, err := c.acquire(ctx, write)
	if err == nil {
		err = cl.end(s.Set(sctx, key, value, ttl))
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
	items = c.compressAll(items)
	s, sctx, cl, err := c.acquire(ctx, write)
	if err == nil {
		err = cl.end(stores.SetMany(sctx, s, items, ttl))
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
	value = c.compress(value)
	s, sctx, cl, err := c.acquire(ctx, write)
	if err != nil {
		return false, err
	}
	ok, err := s.Add(sctx, key, value, ttl)
	return ok, cl.end(err)
}

// Delete removes keys; when it fails, they are left unsettled.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	s, sctx, cl, err := c.acquire(ctx, write)
	if err == nil {
		if len(keys) == 1 {
			err = s.Delete(sctx, keys[0])
		} else {
			err = stores.DeleteMany(sctx, s, keys)
		}
		err = cl.end(err)
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
	s, sctx, cl, err := c.acquire(ctx, write)
	if err != nil {
		return 0, err
	}
	n, err := stores.Incr(sctx, s, key, delta)
	return n, cl.end(err)
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

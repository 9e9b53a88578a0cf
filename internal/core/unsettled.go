package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/echocache/echocache/stores"
)

// A write the store did not take must not leave the value it was meant to
// replace readable: not a page, a value, a fragment, a tag version or a
// memoize version (see Failed writes in package stores). A store that
// passes storetest removes a key itself when it refuses its value
// (ErrTooLarge). For every other failed Set, SetMany or Delete (the store
// failed or timed out, a circuit breaker skipped it, or the request's
// store budget was spent) the Cache removes the keys itself, with a
// context of its own (the caller's may be what ended the write) bounded by
// StoreTimeout, or by what the request's store budget has left
// (budget.go). When even that fails, the keys are unsettled: this process
// reads them as misses, Add and Incr remove them before they act, and they
// are removed from the store as soon as it takes writes again. A write or
// delete of a key that succeeds settles it.

// maxUnsettled bounds the keys a Cache remembers as unsettled. Past it a
// failed write that cannot be undone is only logged.
const maxUnsettled = 1 << 16

// drainBatch is how many unsettled keys one DeleteMany removes.
const drainBatch = 500

// unsettledKeys is the set of keys whose write failed and whose removal
// failed too. Its zero value is empty and ready to use.
type unsettledKeys struct {
	n        atomic.Int64 // len(keys): the read paths check it without the lock
	draining atomic.Bool
	mu       sync.Mutex
	keys     map[string]struct{}
}

func (u *unsettledKeys) has(key string) bool {
	if u.n.Load() == 0 {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.keys[key]
	return ok
}

// add records keys and reports how many did not fit.
func (u *unsettledKeys) add(keys []string) (lost int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.keys == nil {
		u.keys = make(map[string]struct{})
	}
	for _, k := range keys {
		if _, ok := u.keys[k]; ok {
			continue
		}
		if len(u.keys) >= maxUnsettled {
			lost++
			continue
		}
		u.keys[k] = struct{}{}
	}
	u.n.Store(int64(len(u.keys)))
	return lost
}

func (u *unsettledKeys) settle(keys ...string) {
	if u.n.Load() == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range keys {
		delete(u.keys, k)
	}
	u.n.Store(int64(len(u.keys)))
}

// some returns up to n unsettled keys.
func (u *unsettledKeys) some(n int) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]string, 0, min(n, len(u.keys)))
	for k := range u.keys {
		if len(out) == n {
			break
		}
		out = append(out, k)
	}
	return out
}

func (u *unsettledKeys) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keys = nil
	u.n.Store(0)
}

// writeFailed undoes, as far as it can, a Set, SetMany or Delete of keys
// that failed with err: it removes the keys, or else leaves them unsettled.
func (c *Cache) writeFailed(ctx context.Context, err error, keys []string) {
	switch {
	case errors.Is(err, ErrNoStore):
		return // nothing to read either
	case errors.Is(err, stores.ErrTooLarge):
		return // the store removed the keys when it refused the value
	}
	skipped := errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrBudgetSpent)
	if !skipped && c.removeKeys(context.WithoutCancel(ctx), keys) == nil {
		c.unsettled.settle(keys...)
		return
	}
	if lost := c.unsettled.add(keys); lost > 0 {
		c.Logf("%d keys whose write failed could not be removed and are too many to remember; their previous values may be read once the store answers", lost)
		return
	}
	c.Logf("write of %d keys failed (%v) and they could not be removed; this process reads them as misses until the store answers again", len(keys), err)
}

// removeKeys deletes keys through the guarded store calls, without the
// unsettled bookkeeping.
func (c *Cache) removeKeys(ctx context.Context, keys []string) error {
	s, sctx, cl, err := c.acquire(ctx, write)
	if err != nil {
		return err
	}
	if len(keys) == 1 {
		err = s.Delete(sctx, keys[0])
	} else {
		err = stores.DeleteMany(sctx, s, keys)
	}
	return cl.end(err)
}

// unsettledRead reports whether key is unsettled, so that a read of it
// must be a miss. It tries once more to remove the key from the store.
func (c *Cache) unsettledRead(ctx context.Context, key string) bool {
	if !c.unsettled.has(key) {
		return false
	}
	if c.removeKeys(ctx, []string{key}) == nil {
		c.unsettled.settle(key)
	}
	return true
}

// settleBefore removes an unsettled key from the store before a call that
// acts on what it holds (Add, Incr). It returns the removal's error.
func (c *Cache) settleBefore(ctx context.Context, key string) error {
	if !c.unsettled.has(key) {
		return nil
	}
	if err := c.removeKeys(ctx, []string{key}); err != nil {
		return err
	}
	c.unsettled.settle(key)
	return nil
}

// drainUnsettled removes the unsettled keys from the store in the
// background, once the store answers again. One drain runs at a time; it
// stops at the first failure.
func (c *Cache) drainUnsettled() {
	if c.unsettled.n.Load() == 0 || !c.unsettled.draining.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.unsettled.draining.Store(false)
		for {
			batch := c.unsettled.some(drainBatch)
			if len(batch) == 0 || c.removeKeys(context.Background(), batch) != nil {
				return
			}
			c.unsettled.settle(batch...)
		}
	}()
}

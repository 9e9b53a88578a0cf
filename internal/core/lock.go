package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
)

// Lock takes the cross-process lock named key (stored as "l:"+key) for at
// most ttl, with the store's atomic Add (SET NX PX on redis, add on
// memcached). It reports whether the lock was acquired; release gives it
// back and is safe to call more than once. A lock that is never released
// expires after ttl, so a crashed holder cannot wedge the others.
//
// The lock is fail-open like every store call: when the store cannot be
// reached (error, timeout, open breaker, no store), lock returns
// acquired == true with a no-op release, so the caller proceeds as if it
// held the lock instead of waiting for a holder that cannot exist.
//
// release deletes the lock only if it still holds this caller's random
// token. The Store interface has no compare-and-delete, so the check is a
// Get followed by a Delete: if the lock expired and another process took
// it in the instant between the two, that process's lock is deleted. Keep
// ttl well above the time the guarded work takes.
func (c *Cache) Lock(ctx context.Context, key string, ttl time.Duration) (release func(), acquired bool) {
	if ttl <= 0 {
		ttl = time.Second
	}
	k := keyspace.Lock + key
	var token [16]byte
	binary.LittleEndian.PutUint64(token[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(token[8:], rand.Uint64())
	ok, err := c.Add(ctx, k, token[:], ttl)
	if err != nil {
		return func() {}, true
	}
	if !ok {
		return func() {}, false
	}
	released := false
	return func() {
		if released {
			return
		}
		released = true
		// The caller's context may be cancelled by now, and its store
		// budget spent; the lock must still go, bounded by the store
		// timeout of the core.
		rctx := WithoutBudget(context.WithoutCancel(ctx))
		v, err := c.Get(rctx, k)
		if err != nil || !bytes.Equal(v, token[:]) {
			return // expired, taken by someone else, or store trouble: it expires by itself
		}
		_ = c.Delete(rctx, k)
	}, true
}

// PollStore is how a process that did not get a lock waits for the one that
// did: it calls try after 5ms, then at intervals doubling up to 100ms, until
// try returns true, ctx ends or wait has passed. It reports whether try
// ended the wait.
func PollStore(ctx context.Context, wait time.Duration, try func() bool) bool {
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if try() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		pause = min(2*pause, 100*time.Millisecond, left)
		t.Reset(pause)
	}
}

// passMark is the value of a lock key marked pass (MarkPass): no lock
// token is this short.
var passMark = []byte("pass")

// MarkPass replaces the lock named key, whoever holds it, with a mark
// that tells the processes waiting for it, and those that come for ttl,
// not to wait: the work it guarded gave an answer that cannot be shared
// (Varnish's hit-for-pass, across processes). A store error is ignored:
// the waiters then see the lock go, or expire.
func (c *Cache) MarkPass(ctx context.Context, key string, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	_ = c.Set(WithoutBudget(context.WithoutCancel(ctx)), keyspace.Lock+key, passMark, ttl)
}

// LockState reports on the lock named key: whether it is held, and
// whether it is a pass mark (MarkPass), which is not held. err is the
// store's error; the caller then cannot tell.
func (c *Cache) LockState(ctx context.Context, key string) (held, pass bool, err error) {
	v, err := c.Get(ctx, keyspace.Lock+key)
	switch {
	case errors.Is(err, stores.ErrNotFound):
		return false, false, nil
	case err != nil:
		return false, false, err
	case bytes.Equal(v, passMark):
		return false, true, nil
	}
	return true, false, nil
}

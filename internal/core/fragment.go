package core

import (
	"context"
	"errors"
	"time"

	"github.com/echocache/echocache/internal/flight"
	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/stores"
)

// The fragment calls below are the byte-level, fail-open API the pongotag
// template tag is built on. They go through the cache's guarded store calls,
// so the store timeout, the circuit breaker, rate-limited logging and the
// statistics apply to fragments as to everything else.

// GetFragment returns the bytes stored under key, a full store key in the
// "f:" namespace (pongotag.FragmentKey makes them). A miss is
// stores.ErrNotFound. Any other error means the fragment could not be
// looked up (ErrNoStore, ErrStoreUnavailable, a store failure or timeout);
// it has been logged and counted, and the caller should render the
// fragment without storing it: calling FillFragment would only wait for
// the failing store again. Each call is counted as one lookup of
// FeatureFragment: a hit, a miss, an error (a failed lookup) or, without a
// store, a bypass.
func (c *Cache) GetFragment(ctx context.Context, key string) ([]byte, error) {
	b, err := c.fragment(ctx, key)
	switch {
	case err == nil:
		c.CountLookup(ctx, FeatureFragment, ResultHit, "")
	case errors.Is(err, stores.ErrNotFound):
		c.CountLookup(ctx, FeatureFragment, ResultMiss, "")
	default:
		c.CountFailedLookup(ctx, FeatureFragment, err)
	}
	return b, err
}

// SetFragment stores value under key for ttl: zero means the cache's
// DefaultTTL, a negative ttl means no expiry. A store error is logged and
// counted and returned for information only; the caller has its fragment
// anyway. A fragment too large for the store (stores.ErrTooLarge) is counted
// as the bypass BypassTooLarge rather than as a store failure, so it never
// opens the circuit breaker.
func (c *Cache) SetFragment(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	rec := record.Begin(make([]byte, 0, record.Overhead+len(value)), record.Fragment, fragmentVersion)
	err := c.Set(ctx, key, record.Seal(append(rec, value...)), c.TTL(ttl))
	if err == nil {
		c.stats.Stores.Add(1)
	}
	return err
}

// FillFragment renders a fragment that GetFragment missed (with
// stores.ErrNotFound) and stores it for ttl (as in SetFragment). Concurrent
// calls for the same key on the same Cache share one render, in this
// process (a flight.Turns); a call that finds the fragment stored
// meanwhile returns it without rendering. render runs on the goroutine of
// the caller holding the turn. Its error is returned to that caller alone,
// and nothing is stored; the next waiting caller then renders the fragment
// itself (a render that panics hands the turn on the same way). A store
// error is logged and counted; the rendered bytes are returned anyway.
// shared reports whether the bytes came from another caller's render. A
// caller waiting for another caller's render returns ctx's error as soon
// as ctx ends. The returned slice must not be modified: callers sharing a
// render share it.
func (c *Cache) FillFragment(ctx context.Context, key string, ttl time.Duration, render func() ([]byte, error)) (b []byte, shared bool, err error) {
	g := State(c, "fragment-flight", func() *flight.Turns[[]byte] { return new(flight.Turns[[]byte]) })
	t, b, err := g.Join(ctx, key, nil)
	if err != nil {
		return nil, true, err // a caller that gives up does not hold up its page
	}
	if t == nil {
		c.CountCoalesced(FeatureFragment)
		return b, true, nil
	}
	// Also on an error or a panic in render: the next waiter renders.
	defer t.End()
	// The render runs here, on the caller's goroutine, because it uses the
	// caller's template context. A caller that missed just before the
	// previous render stored the fragment would otherwise render it again.
	if b, err := c.fragment(ctx, key); err == nil {
		t.Share(b)
		return b, false, nil
	}
	if b, err = render(); err != nil {
		return nil, false, err
	}
	// The render is done: store it even if this caller's context ended
	// meanwhile, for the callers sharing it and those to come (the store
	// timeout still applies).
	_ = c.SetFragment(context.WithoutCancel(ctx), key, b, ttl) // logged and counted; b is served anyway
	t.Share(b)
	return b, false, nil
}

// A stored fragment is a record (internal/record) of kind 'F' whose payload
// is the rendered bytes. One that does not open (corrupt, or raw bytes
// written before fragments were framed) is a miss, which the next render
// replaces.
const fragmentVersion = 1

// fragment reads and opens the fragment record under key.
func (c *Cache) fragment(ctx context.Context, key string) ([]byte, error) {
	b, err := c.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	body, err := record.Open(b, record.Fragment, fragmentVersion, c.Verifies())
	if err != nil {
		c.stats.Corrupt.Add(1)
		c.Logf("fragment %q does not open (%v): rendering it again", key, err)
		return nil, stores.ErrNotFound
	}
	return body, nil
}

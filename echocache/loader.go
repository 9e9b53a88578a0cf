package echocache

import (
	"context"
	"errors"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/flight"
	"github.com/echocache/echocache/stores"
)

// The read-through path shared by GetOrSet, Function and Memoize: look the
// key up, and on a miss run the loader once per key in this process
// (flight.Group), optionally once across processes (CrossProcessLock), and
// store its result.

// loadedValue is what a shared loader call hands to each of its callers.
type loadedValue[T any] struct {
	val      T
	storeErr error // store or encoding error met while filling the cache
}

func typedFlight(c *Cache) *flight.Group[any] {
	return core.State(c.core(), "typed.flight", func() *flight.Group[any] { return new(flight.Group[any]) })
}

// loadValue is the read-through path shared by GetOrSet, Func and Memoized.
// skey is the store key ("" when the store cannot be used, e.g. the memoize
// version is unknown); fkey names the shared call.
func loadValue[T any](ctx context.Context, c *Cache, f Feature, fkey, skey string, ttl time.Duration, o callOptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if !c.core().HasStore() {
		c.bypass(ctx, f, BypassNoStore)
		if o.strict {
			return zero, ErrNoStore
		}
		if c == nil {
			return fn(ctx)
		}
		skey = ""
	}
	if skey != "" {
		v, hit, err := lookupValue[T](ctx, c, f, skey)
		if hit {
			return v, nil
		}
		if err != nil {
			if o.strict {
				return zero, err
			}
			skey = ""
		}
	}
	return loadMiss(ctx, c, f, fkey, skey, ttl, o, fn)
}

// loadMiss runs fn for a key of feature f that missed, shared with the
// concurrent callers of fkey, and stores the result under skey unless skey
// is "".
func loadMiss[T any](ctx context.Context, c *Cache, f Feature, fkey, skey string, ttl time.Duration, o callOptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	storeOK := skey != ""
	res, shared, err := typedFlight(c).Do(ctx, fkey, func(fctx context.Context) (any, error) {
		var r loadedValue[T]
		fillOK := storeOK
		if fillOK {
			// A shared call that ended between our lookupValue and now has
			// stored the value: read it rather than call fn again.
			v, hit, err := lookupValue[T](fctx, c, noCount, skey)
			if hit {
				return loadedValue[T]{val: v}, nil
			}
			if err != nil {
				fillOK, r.storeErr = false, err
			}
		}
		if fillOK && o.lockTTL > 0 {
			release, acquired := c.core().Lock(fctx, skey, o.lockTTL)
			if acquired {
				defer release()
			} else if v, ok := awaitValue[T](fctx, c, skey, o.lockTTL); ok {
				return loadedValue[T]{val: v}, nil
			}
			// Not acquired and the holder did not fill the entry in time:
			// run the loader here rather than wait any longer.
		}
		v, err := fn(fctx)
		if err != nil {
			return nil, typedLoaderError{err}
		}
		r.val = v
		if fillOK {
			r.storeErr = fillValue(fctx, c, skey, v, ttl, o)
		}
		return r, nil
	})
	if shared {
		c.core().CountCoalesced(f)
	}
	var le typedLoaderError
	if errors.As(err, &le) {
		return zero, le.err
	}
	if err != nil {
		return zero, err // the caller's context ended, or fn panicked
	}
	r, ok := res.(loadedValue[T])
	if !ok {
		// Another caller is loading the same key with a different type.
		return fn(ctx)
	}
	if r.storeErr != nil && o.strict {
		return r.val, r.storeErr
	}
	return r.val, nil
}

// awaitValue waits, polling the store, for another process that holds the
// loader lock to store skey. It gives up after wait, when ctx ends, or when
// the store fails.
func awaitValue[T any](ctx context.Context, c *Cache, skey string, wait time.Duration) (T, bool) {
	var v T
	found := false
	core.PollStore(ctx, wait, func() bool {
		data, err := c.core().Get(ctx, skey)
		if err != nil {
			return !errors.Is(err, stores.ErrNotFound) // the store cannot tell: stop
		}
		got, err := decodeValue[T](c.codec(), data, c.core().Verifies())
		if err == nil {
			v, found = got, true
			return true
		}
		// A value of another type will not become ours: stop waiting.
		return errors.Is(err, ErrTypeMismatch)
	})
	return v, found
}

// typedLoaderError marks an error returned by the loader, as opposed to one met
// by the cache.
type typedLoaderError struct{ err error }

func (e typedLoaderError) Error() string { return e.err.Error() }

func (e typedLoaderError) Unwrap() error { return e.err }

// fillValue stores a loaded value. It returns the store or encoding error, which
// has already been logged and counted.
func fillValue[T any](ctx context.Context, c *Cache, skey string, v T, ttl time.Duration, o callOptions) error {
	if !o.cacheZero && isZeroValue(&v) {
		c.countBypass(BypassZeroResult)
		return nil
	}
	data, err := encodeValue(c.codec(), v)
	if err != nil {
		c.countBypass(BypassUnencodable)
		c.core().Logf("not caching %q: %v", skey, err)
		return c.unencodable(ctx, err, skey)
	}
	if err := c.core().Set(ctx, skey, data, c.core().TTL(ttl)); err != nil {
		return err
	}
	c.core().Counters().Stores.Add(1)
	return nil
}

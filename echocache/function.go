package echocache

import (
	"context"
	"time"

	"github.com/echocache/echocache/internal/keyspace"
)

// Func is a function without arguments whose result is cached under a fixed
// key: Flask-Cache's @cache.cached(timeout=10, key_prefix="current_time") on
// a plain function. Create it once with [Function]; it is safe for
// concurrent use.
type Func[R any] struct {
	c    *Cache
	key  string // store key: v:<key>
	ttl  time.Duration
	opts callOptions
	fn   func(ctx context.Context) (R, error)
}

// Function returns fn cached under key for ttl (zero: the cache's default
// TTL; stores.NoExpiry: no expiry). The result is stored where [Set] would
// store it, so Get, Set and Delete of the same key see it.
//
// Concurrent callers of a cold key in this process share one call of fn; a
// loader error is returned and not cached; a zero result is cached only with
// [CacheZero]; a store error makes Get call fn and return its result, unless
// [Strict] is given.
//
// Function panics if c or fn is nil, key is empty, or another Function of c
// already uses key: two functions must never share entries. Create cached
// functions once, at package level or in main, not per request.
func Function[R any](c *Cache, key string, ttl time.Duration, fn func(ctx context.Context) (R, error), opts ...CallOption) *Func[R] {
	if c == nil || fn == nil {
		panic("echocache: Function needs a Cache and a function")
	}
	if key == "" {
		panic("echocache: Function needs a key")
	}
	registerName(c, keyspace.Value+key, "Function key")
	return &Func[R]{c: c, key: keyspace.Value + key, ttl: ttl, opts: applyOptions(opts), fn: fn}
}

// Get returns the cached result, calling the function on a miss.
func (f *Func[R]) Get(ctx context.Context) (R, error) {
	return loadValue(ctx, f.c, FeatureValue, f.key, f.key, f.ttl, f.opts, f.fn)
}

// Forget removes the cached result, so the next Get calls the function.
// Store errors are returned.
func (f *Func[R]) Forget(ctx context.Context) error {
	if !f.c.core().HasStore() {
		return ErrNoStore
	}
	return f.c.core().Delete(ctx, f.key)
}

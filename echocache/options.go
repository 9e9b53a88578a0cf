package echocache

import "time"

// CallOption changes how one call of the typed API, or every call of one
// cached function, treats the store.
type CallOption func(*callOptions)

type callOptions struct {
	strict    bool
	cacheZero bool
	lockTTL   time.Duration
}

func applyOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Strict makes store errors visible: instead of failing open (treating the
// store as empty, logging and counting the error), the call returns the
// error. A cache without a store returns ErrNoStore, and a value of a Go
// type the call cannot hold a [TypeMismatchError] (not a miss). Misses are
// still ErrNotFound and loader errors are still returned either way.
func Strict() CallOption { return func(o *callOptions) { o.strict = true } }

// CrossProcessLock makes processes that share a store run the loader of a
// cold key once between them, not once each: the process that takes the
// lock (stored under l:, with the store's atomic Add) runs the loader, and
// the others poll the store for its result for up to ttl, then run the
// loader themselves rather than wait longer. Choose ttl above the loader's
// usual duration. The lock is fail-open: when the store cannot be reached,
// every process runs its loader. Within one process, callers always share
// one loader call, with or without this option.
func CrossProcessLock(ttl time.Duration) CallOption {
	return func(o *callOptions) { o.lockTTL = ttl }
}

// CacheZero caches zero results of a loader (nil pointers, slices, maps and
// interfaces, 0, "", zero structs), Flask-Caching's cache_none. By default a
// loader that returns the zero value of its type is called again next time.
// A cached zero value is a hit, distinct from a miss.
func CacheZero() CallOption { return func(o *callOptions) { o.cacheZero = true } }

// failOpenErr decides what a fail-open call does with a store error: nil for a
// miss, the error itself in strict mode. ErrNoStore counts as a store error
// only in strict mode.
func failOpenErr(err error, o callOptions) error {
	if err == nil || !o.strict {
		return nil
	}
	return err
}

package echocache

import "github.com/echocache/echocache/internal/keyenc"

// Keyer is implemented by values that choose their own identity as a cache
// key: a Memoize argument, or a vary-on value of a template fragment
// (pongotag.Keyer is this interface). CacheKey must return the same string
// for values that are the same to the cache and different strings
// otherwise.
type Keyer interface {
	CacheKey() string
}

// ErrUnkeyable is returned (wrapped, naming the value) for a value that
// has no cache key: a func, a channel, or a value nested too deeply (a
// cycle), and by MarshalText errors. Memoize refuses argument types that
// hold such values where the type alone tells; an argument found to have
// none at call time makes the call run uncached (see [Memoize]).
var ErrUnkeyable = keyenc.ErrUnkeyable

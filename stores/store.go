// Package stores holds the cache backends shared by every part of echocache:
// null, memory, file, redis, memcached and authenticated memcached.
//
// Every backend implements [Store], a small byte-oriented interface that is
// safe for concurrent use. A backend is usually chosen by URL with [Open]:
//
//	store, err := stores.Open(ctx, "redis://127.0.0.1:6379/0?prefix=myapp:")
//
// # Expiry
//
// The ttl argument of [Store.Set], [Store.Add] and [MultiSetter.SetMany]
// follows one rule on every backend:
//
//   - ttl > 0: the entry expires after ttl. Backends with a coarser clock
//     round up (memcached counts whole seconds; a ttl over 30 days is sent to
//     memcached as an absolute Unix time, which the backend does for you).
//   - ttl == 0 ([DefaultTTL]): the store's default TTL is used, set with the
//     default_ttl URL parameter or the backend's config. A store whose
//     default is zero keeps entries until they are deleted or evicted.
//   - ttl < 0 ([NoExpiry]): the entry never expires; it can still be evicted
//     by a bounded backend.
//
// # Failed writes
//
// Set and SetMany replace what a key holds. When one of them returns an
// error, every key it did not store holds nothing: a reader gets its new
// value or a miss, never the value the write was meant to replace. A value
// the backend refuses (ErrTooLarge) removes the key's previous value, as
// memcached itself does when it cannot store a SET ("Avoid stale data
// persisting in cache because we failed alloc", memcached's
// process_update_command); a write that fails on its way (a network error,
// a server that answers with an error) removes the keys it may not have
// written, as far as the server can still be reached; a memcached store
// remembers the removals a server it cannot reach owes, and makes them
// before that server serves anything again. A call refused before
// it starts (ErrClosed, or a context already done) changes nothing. The
// removal runs even when the write's context has ended; the write waits
// for it only while that context allows (its deadline, its cancellation),
// and after that it goes on in the background, so that a failed write
// never keeps its caller past its deadline: until it completes, a reader
// may still get the previous value.
//
// Add never replaces a present value, so a refused Add leaves the key as it
// was. Incr keeps the expiry of the entry it changes.
//
// # Namespaces
//
// Every store has a namespace (the prefix URL parameter). [Store.Clear]
// removes the entries of its own namespace and nothing else: it never
// flushes a shared server.
package stores

import (
	"context"
	"errors"
	"time"
)

// Store is a byte-oriented cache backend. Implementations are safe for
// concurrent use by multiple goroutines.
//
// Keys are arbitrary strings (unicode, spaces and long keys are allowed;
// backends with restricted key alphabets make them safe). Values are
// arbitrary bytes, including NUL bytes; an empty value is a hit, distinct
// from a miss. Slices returned by a Store belong to the caller.
//
// Store holds what every backend must do. What a backend can do better
// than a loop over these calls (batch calls, an atomic increment) it adds
// as an optional interface, the way database/sql/driver does: [MultiGetter],
// [MultiSetter], [MultiDeleter], [Incrementer] and [Pinger]. Callers use
// the functions of the same names ([GetMany], [SetMany], [DeleteMany],
// [Incr], [Ping]), which fall back to single calls. Every backend of this
// package implements them all.
type Store interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl (see the package doc for the TTL
	// rules). When it fails, key holds nothing rather than its previous
	// value (see Failed writes in the package doc).
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Add stores value under key only if key is absent, atomically. It
	// reports whether the value was stored.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Clear removes every entry of this store's namespace, and only those.
	Clear(ctx context.Context) error
	// Close releases the store's resources. A store that was handed an
	// existing client does not close that client.
	Close() error
}

// TTL values with a special meaning. See the package doc.
const (
	// DefaultTTL asks for the store's default TTL.
	DefaultTTL time.Duration = 0
	// NoExpiry asks for an entry that never expires.
	NoExpiry time.Duration = -1
)

// Errors returned by stores. Backends wrap them with detail, so compare with
// errors.Is.
var (
	// ErrNotFound is returned by Get when the key is absent or expired.
	ErrNotFound = errors.New("stores: cache miss")
	// ErrNotInteger is returned by Incr when the stored value is not a
	// counter in the form [Incrementer] defines (Redis's: an optional '-'
	// and digits, no leading zeros, no '+', no spaces, within int64), or
	// when the result would overflow int64.
	ErrNotInteger = errors.New("stores: value is not an integer")
	// ErrTooLarge is returned when a value is larger than the backend can
	// store (memcached's item size limit, for example). The key's previous
	// value is gone: a refused Set or SetMany removes it.
	ErrTooLarge = errors.New("stores: value too large")
	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("stores: store is closed")
	// ErrAuth is returned when a server rejects the store's credentials.
	ErrAuth = errors.New("stores: authentication failed")
)

// resolveTTL applies the TTL rules of the package doc: it returns the
// effective lifetime of an entry written with ttl on a store whose default is
// def. A result of zero means the entry never expires.
func resolveTTL(ttl, def time.Duration) time.Duration {
	if ttl == DefaultTTL {
		ttl = def
	}
	if ttl < 0 {
		return 0
	}
	return ttl
}

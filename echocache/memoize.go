package echocache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/flight"
	"github.com/echocache/echocache/internal/keyenc"
	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
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
	return loadValue(ctx, f.c, f.key, f.key, f.ttl, f.opts, f.fn)
}

// Forget removes the cached result, so the next Get calls the function.
// Store errors are returned.
func (f *Func[R]) Forget(ctx context.Context) error {
	if !f.c.core().HasStore() {
		return ErrNoStore
	}
	return f.c.core().Delete(ctx, f.key)
}

// Memoized is a function of one argument whose results are cached per
// argument value: Flask-Cache's @cache.memoize. Create it once with
// [Memoize]; it is safe for concurrent use.
type Memoized[A comparable, R any] struct {
	c     *Cache
	name  string
	vkey  string // mv:<name>
	ttl   time.Duration
	opts  callOptions
	fn    func(ctx context.Context, a A) (R, error)
	encFn keyenc.Encoder
}

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

// Memoize returns fn with its results cached for ttl per distinct argument
// (zero ttl: the cache's default; stores.NoExpiry: no expiry). Several
// arguments go in a struct.
//
// An entry's key is the name, the function's current version token and a
// canonical encoding of the argument, by the rules pongotag.FragmentKey
// follows too: a value that implements [Keyer] or encoding.TextMarshaler
// (time.Time, netip.Addr...) is keyed by what that returns; otherwise by
// value: structs and arrays by every field (unexported ones included) and
// element, strings length prefixed, numbers in decimal (integers of every
// type by value, -0 and +0 one key), pointers and interfaces by what they
// hold. So equal arguments share an entry, and functions with different
// names never do. Argument types that hold a func, a channel or an
// unsafe.Pointer (not behind an interface) are refused; an argument that
// turns out to have no key at call time (an interface holding a func, a
// cycle) makes that call run fn uncached, logged and counted as the bypass
// [BypassUnkeyable], or return an error wrapping [ErrUnkeyable] when
// [Strict].
//
// The results obey the same rules as [Function]'s: one call per cold key in
// this process, loader errors returned and never cached, zero results cached
// only with [CacheZero], fail-open unless [Strict].
//
// Memoize panics if c or fn is nil, if name is empty or contains ':', if the
// argument type cannot be encoded, or if another Memoize of c already uses
// name. Create memoized functions once, at package level or in main.
// Processes sharing a store share the entries of a name, which must
// therefore mean the same function in each of them.
func Memoize[A comparable, R any](c *Cache, name string, ttl time.Duration, fn func(ctx context.Context, a A) (R, error), opts ...CallOption) *Memoized[A, R] {
	if c == nil || fn == nil {
		panic("echocache: Memoize needs a Cache and a function")
	}
	if name == "" || strings.ContainsAny(name, ":") {
		panic(fmt.Sprintf("echocache: Memoize name %q must be non-empty and contain no ':'", name))
	}
	enc, err := keyenc.For(reflect.TypeFor[A]())
	if err != nil {
		panic(fmt.Sprintf("echocache: Memoize %q: %v", name, err))
	}
	registerName(c, keyspace.Memo+name, "Memoize name")
	return &Memoized[A, R]{
		c: c, name: name, vkey: keyspace.MemoVersion + name,
		ttl: ttl, opts: applyOptions(opts), fn: fn, encFn: enc,
	}
}

// Get returns the cached result for a, calling the function on a miss.
func (m *Memoized[A, R]) Get(ctx context.Context, a A) (R, error) {
	var zero R
	if !m.c.core().HasStore() {
		fkey, err := m.key(nil, a)
		if err != nil {
			return m.unkeyed(ctx, a, err)
		}
		return loadValue(ctx, m.c, fkey, "", m.ttl, m.opts, m.bind(a))
	}
	ver, err := m.version(ctx)
	if err != nil {
		if m.opts.strict {
			return zero, err
		}
		// Fail open: without the version no entry can be named; the call is
		// still shared with the concurrent callers of a.
		m.c.core().Counters().Misses.Add(1)
		fkey, err := m.key(nil, a)
		if err != nil {
			return m.unkeyed(ctx, a, err)
		}
		return loadValue(ctx, m.c, fkey, "", m.ttl, m.opts, m.bind(a))
	}
	skey, err := m.key(ver, a)
	if err != nil {
		return m.unkeyed(ctx, a, err)
	}
	// The hit path stays free of the closure that binds a.
	if v, hit, err := lookupValue[R](ctx, m.c, skey); hit {
		return v, nil
	} else if err != nil {
		if m.opts.strict {
			return zero, err
		}
		return loadMiss(ctx, m.c, skey, "", m.ttl, m.opts, m.bind(a))
	}
	return loadMiss(ctx, m.c, skey, skey, m.ttl, m.opts, m.bind(a))
}

// unkeyed runs fn for an argument that has no key: uncached, or not at all
// when the call is Strict.
func (m *Memoized[A, R]) unkeyed(ctx context.Context, a A, err error) (R, error) {
	if m.opts.strict {
		var zero R
		return zero, err
	}
	m.c.countBypass(BypassUnkeyable)
	m.c.core().Logf("memoize %q: %v; calling it uncached", m.name, err)
	return m.fn(ctx, a)
}

func (m *Memoized[A, R]) bind(a A) func(context.Context) (R, error) {
	return func(ctx context.Context) (R, error) { return m.fn(ctx, a) }
}

// key returns the store key of a's entry under version ver:
// m:<name>:<ver>:<argument>. A nil ver gives the name of the shared call
// used when the version is unknown (m:<name>::<argument>), which is never a
// store key since versions are not empty. The error wraps ErrUnkeyable.
func (m *Memoized[A, R]) key(ver []byte, a A) (string, error) {
	var buf [96]byte
	b := append(buf[:0], keyspace.Memo...)
	b = append(b, m.name...)
	b = append(b, ':')
	b = append(b, ver...)
	b = append(b, ':')
	// Common argument types skip reflection; they encode exactly as
	// keyenc's encoders do.
	switch x := any(a).(type) {
	case string:
		b = keyenc.AppendString(b, x)
	case int:
		b = keyenc.AppendInt(b, int64(x))
	case int64:
		b = keyenc.AppendInt(b, x)
	default:
		return m.keySlow(b, a)
	}
	return string(b), nil
}

func (m *Memoized[A, R]) keySlow(prefix []byte, a A) (string, error) {
	b := append(make([]byte, 0, len(prefix)+128), prefix...)
	// Addressable, so that methods of unexported fields can be called.
	b, err := m.encFn(b, reflect.ValueOf(&a).Elem())
	if err != nil {
		return "", fmt.Errorf("echocache: Memoize %q: argument %T: %w", m.name, a, err)
	}
	return string(b), nil
}

// Forget removes the cached result for a. Store errors are returned.
func (m *Memoized[A, R]) Forget(ctx context.Context, a A) error {
	if !m.c.core().HasStore() {
		return ErrNoStore
	}
	data, err := m.c.core().Get(ctx, m.vkey)
	if errors.Is(err, stores.ErrNotFound) || err == nil && !validVersionToken(data) {
		return nil // no version yet, or a broken one that Get replaces: nothing is reachable
	}
	if err != nil {
		return err
	}
	key, err := m.key(data, a)
	if err != nil {
		return err
	}
	return m.c.core().Delete(ctx, key)
}

// ForgetAll drops every cached result of the function in O(1), on every
// store: it replaces the function's version token, so the old entries can no
// longer be reached (they expire with their TTL). Store errors are returned.
func (m *Memoized[A, R]) ForgetAll(ctx context.Context) error {
	if !m.c.core().HasStore() {
		return ErrNoStore
	}
	return m.c.core().Set(ctx, m.vkey, []byte(newVersionToken()), stores.NoExpiry)
}

// version returns the function's current version token, creating it when
// absent. The token never expires, so it cannot vanish before the entries it
// names; if a bounded store evicts it anyway (or it is corrupt), a fresh
// random token replaces it, so old entries stay unreachable rather than
// coming back under a predictable value.
func (m *Memoized[A, R]) version(ctx context.Context) ([]byte, error) {
	data, err := m.c.core().Get(ctx, m.vkey)
	if err == nil && validVersionToken(data) {
		return data, nil
	}
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		return nil, err
	}
	tok := []byte(newVersionToken())
	if err == nil { // present but not a token: replace it
		m.c.core().Logf("replacing corrupt version token %q", m.vkey)
		if err := m.c.core().Set(ctx, m.vkey, tok, stores.NoExpiry); err != nil {
			return nil, err
		}
		return tok, nil
	}
	added, err := m.c.core().Add(ctx, m.vkey, tok, stores.NoExpiry)
	if err != nil {
		return nil, err
	}
	if added {
		return tok, nil
	}
	// Another caller or process created it first: use theirs.
	data, err = m.c.core().Get(ctx, m.vkey)
	if err != nil {
		return nil, err
	}
	if !validVersionToken(data) {
		return nil, fmt.Errorf("echocache: version token %q is corrupt", m.vkey)
	}
	return data, nil
}

const versionTokenLen = 16 // hex digits: 64 random bits

func newVersionToken() string {
	var b [versionTokenLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func validVersionToken(b []byte) bool {
	if len(b) != versionTokenLen {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// typedNames records the Function keys and Memoize names of one Cache.
type typedNames struct {
	mu  sync.Mutex
	set map[string]bool
}

func registerName(c *Cache, name, what string) {
	n := core.State(c.core(), "typed.names", func() *typedNames { return &typedNames{set: map[string]bool{}} })
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.set[name] {
		panic(fmt.Sprintf("echocache: %s %q is already used on this Cache", what, strings.SplitN(name, ":", 2)[1]))
	}
	n.set[name] = true
}

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
func loadValue[T any](ctx context.Context, c *Cache, fkey, skey string, ttl time.Duration, o callOptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if !c.core().HasStore() {
		if o.strict {
			return zero, ErrNoStore
		}
		if c == nil {
			return fn(ctx)
		}
		skey = ""
	}
	if skey != "" {
		v, hit, err := lookupValue[T](ctx, c, skey)
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
	return loadMiss(ctx, c, fkey, skey, ttl, o, fn)
}

// loadMiss runs fn for a key that missed, shared with the concurrent callers
// of fkey, and stores the result under skey unless skey is "".
func loadMiss[T any](ctx context.Context, c *Cache, fkey, skey string, ttl time.Duration, o callOptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	storeOK := skey != ""
	res, _, err := typedFlight(c).Do(ctx, fkey, func(fctx context.Context) (any, error) {
		var r loadedValue[T]
		fillOK := storeOK
		if fillOK {
			// A shared call that ended between our lookupValue and now has
			// stored the value: read it rather than call fn again.
			v, hit, err := lookupValue[T](fctx, c, skey)
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
		return err
	}
	if err := c.core().Set(ctx, skey, data, c.core().TTL(ttl)); err != nil {
		return err
	}
	c.core().Counters().Stores.Add(1)
	return nil
}

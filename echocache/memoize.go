package echocache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/keyenc"
	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
)

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
	pin   atomic.Pointer[pinnedVersion] // the version token, while a local tier vouches for it
}

// pinnedVersion is a version token read after stamp was taken: it is the
// function's version while the store's local tier says the token's key is
// unchanged since (core.Cache.Watch), which saves reading it on every call.
type pinnedVersion struct {
	tok   []byte
	stamp core.Stamp
}

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
		return loadValue(ctx, m.c, FeatureMemoize, fkey, "", m.ttl, m.opts, m.bind(a))
	}
	ver, err := m.version(ctx)
	if err != nil {
		if m.opts.strict {
			return zero, err
		}
		// Fail open: without the version no entry can be named; the call is
		// still shared with the concurrent callers of a.
		m.c.countFailedLookup(ctx, FeatureMemoize, err)
		fkey, err := m.key(nil, a)
		if err != nil {
			return m.unkeyed(ctx, a, err)
		}
		return loadMiss(ctx, m.c, FeatureMemoize, fkey, "", m.ttl, m.opts, m.bind(a))
	}
	skey, err := m.key(ver, a)
	if err != nil {
		return m.unkeyed(ctx, a, err)
	}
	// The hit path stays free of the closure that binds a.
	if v, hit, err := lookupValue[R](ctx, m.c, FeatureMemoize, skey); hit {
		return v, nil
	} else if err != nil {
		if m.opts.strict {
			return zero, err
		}
		return loadMiss(ctx, m.c, FeatureMemoize, skey, "", m.ttl, m.opts, m.bind(a))
	}
	return loadMiss(ctx, m.c, FeatureMemoize, skey, skey, m.ttl, m.opts, m.bind(a))
}

// unkeyed runs fn for an argument that has no key: uncached, or not at all
// when the call is Strict.
func (m *Memoized[A, R]) unkeyed(ctx context.Context, a A, err error) (R, error) {
	if m.opts.strict {
		var zero R
		return zero, err
	}
	m.c.bypass(ctx, FeatureMemoize, BypassUnkeyable)
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
	b := append(make([]byte, 0, len(prefix)+32), prefix...)
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
	cc := m.c.core()
	if p := m.pin.Load(); p != nil && cc.Unchanged(p.stamp) {
		return p.tok, nil
	}
	stamp, watched := cc.Watch(m.vkey)
	// Read only, to name the entry: a local tier's copy is not copied.
	data, _, err := cc.View(ctx, nil, m.vkey)
	if err == nil && validVersionToken(data) {
		if watched {
			m.pin.Store(&pinnedVersion{tok: bytes.Clone(data), stamp: stamp})
		}
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

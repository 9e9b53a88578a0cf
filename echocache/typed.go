package echocache

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
)

// ErrNotFound is returned by [Get] when the key holds no usable value: it is
// absent, expired, corrupt, or the store could not be asked (fail-open). It
// is stores.ErrNotFound, so either sentinel matches with errors.Is.
var ErrNotFound = stores.ErrNotFound

func (c *Cache) codec() Codec {
	if cd, ok := c.core().Codec().(Codec); ok {
		return cd
	}
	return DefaultCodec
}

// noCount is the feature of a lookup that is not counted: a loader's
// second look at a key its caller has looked up (and counted) already.
const noCount Feature = 255

// lookupValue reads and decodes the entry under the full store key skey,
// and counts the lookup as one of f (unless f is noCount). hit reports a
// usable value. err is a store error (the store could not be asked) or a
// *TypeMismatchError (the entry holds a value a T cannot hold; it is
// kept), never a miss. A corrupt entry is logged, deleted and reported as
// a miss.
func lookupValue[T any](ctx context.Context, c *Cache, f Feature, skey string) (v T, hit bool, err error) {
	counted := f != noCount
	if !c.core().HasStore() {
		if counted {
			c.bypass(ctx, f, BypassNoStore)
		}
		return v, false, ErrNoStore
	}
	// A copy a local tier holds is read without copying it: decodeValue
	// copies what it keeps (Codec.Unmarshal must not keep its input).
	data, memo, err := c.core().View(ctx, nil, skey)
	if err != nil {
		if errors.Is(err, stores.ErrNotFound) {
			if counted {
				c.countLookup(ctx, f, ResultMiss)
			}
			return v, false, nil
		}
		if counted {
			c.countFailedLookup(ctx, f, err)
		}
		return v, false, err
	}
	share := memo != nil && immutable[T]()
	if share {
		if x, ok := memo.Load().(T); ok {
			if counted {
				c.countLookup(ctx, f, ResultHit)
			}
			return x, true, nil
		}
	}
	v, err = decodeValue[T](c.codec(), data, c.core().Verifies())
	if err == nil && share {
		memo.Store(v)
	}
	if err != nil {
		if counted {
			c.countLookup(ctx, f, ResultMiss)
		}
		if mm := asMismatch(err, skey); mm != nil {
			c.core().Logf("reading %v; the entry is kept", mm)
			return v, false, mm
		}
		c.core().DropCorrupt(ctx, "value", skey, err)
		return v, false, nil
	}
	if counted {
		c.countLookup(ctx, f, ResultHit)
	}
	return v, true, nil
}

// immutable reports whether a decoded T can be shared by every reader of
// the bytes it was decoded from (kept in their memo, see inproc.Memo):
// a string or an integer holds no reference a caller could modify, and
// decodeValue reads it without the Codec (so that caches with different
// codecs on one store read it alike; a named string type goes through
// the Codec, and is not shared).
func immutable[T any]() bool {
	t := reflect.TypeFor[T]()
	return t == reflect.TypeFor[string]() || storedAsInteger(t.Kind())
}

// asMismatch returns err as a *TypeMismatchError for skey, or nil when it
// is another error.
func asMismatch(err error, skey string) *TypeMismatchError {
	var mm *TypeMismatchError
	if !errors.As(err, &mm) {
		return nil
	}
	mm.Key = skey
	return mm
}

// Get returns the value stored under key by [Set], [GetOrSet], [Cache.Incr]
// or a [Function] of the same key. A missing, expired or corrupt value
// returns ErrNotFound (a corrupt one is also deleted). A store error is
// logged and counted and also returns ErrNotFound, unless the call is
// [Strict].
//
// A value that a T cannot hold (Get[int] of a string) is kept, and Get
// returns a [TypeMismatchError] wrapped with ErrNotFound, so that errors.Is
// matches both ErrNotFound and ErrTypeMismatch; a Strict call returns the
// TypeMismatchError alone.
//
// Get[any] returns what was stored, as these Go types: a string for a
// string, a []byte for a []byte, an int64 for a value of any integer type
// (a uint64 above math.MaxInt64), including counters written by Incr; nil
// for a stored zero value, whatever its type (the type of a zero value is
// not stored); and for every other value what the Codec decodes into an
// interface{} (for CBORCodec: map[any]any, []any, uint64, int64, float64,
// bool, string, []byte, nil; see the codec's doc).
func Get[T any](ctx context.Context, c *Cache, key string, opts ...CallOption) (T, error) {
	o := applyOptions(opts)
	v, hit, err := lookupValue[T](ctx, c, FeatureValue, keyspace.Value+key)
	if hit {
		return v, nil
	}
	var mm *TypeMismatchError
	if errors.As(err, &mm) {
		if o.strict {
			return v, mm
		}
		return v, fmt.Errorf("%w: %w", ErrNotFound, mm)
	}
	if err := failOpenErr(err, o); err != nil {
		return v, err
	}
	return v, ErrNotFound
}

// Set stores v under key for ttl: zero means the cache's default TTL, a
// negative ttl (stores.NoExpiry) means no expiry. A zero v is stored too and
// read back as a hit. An error encoding v (a channel or a func the codec
// refuses, a value that refers to itself: [ErrValueTooDeep]) is returned,
// and the key is deleted: like every write that did not store its value,
// it leaves a miss, never the value it was meant to replace. A store
// error is logged and counted but not returned, unless the call is
// [Strict].
func Set[T any](ctx context.Context, c *Cache, key string, v T, ttl time.Duration, opts ...CallOption) error {
	o := applyOptions(opts)
	data, err := encodeValue(c.codecOrDefault(), v)
	if err != nil {
		return c.unencodable(ctx, err, keyspace.Value+key)
	}
	if !c.core().HasStore() {
		return failOpenErr(ErrNoStore, o)
	}
	if err := c.core().Set(ctx, keyspace.Value+key, data, c.core().TTL(ttl)); err != nil {
		return failOpenErr(err, o)
	}
	c.core().Counters().Stores.Add(1)
	return nil
}

// unencodable deletes the store keys of a write whose value did not
// encode, so that they read as misses rather than as the values the write
// was meant to replace (a failed delete leaves them unsettled: misses in
// this process, removed once the store takes writes), and returns err.
func (c *Cache) unencodable(ctx context.Context, err error, skeys ...string) error {
	if c.core().HasStore() {
		_ = c.core().Delete(ctx, skeys...)
	}
	return err
}

// codecOrDefault is codec for a Cache that may be nil.
func (c *Cache) codecOrDefault() Codec {
	if c == nil {
		return DefaultCodec
	}
	return c.codec()
}

// Add stores v under key only if no value is stored there, atomically, and
// reports whether it did. Unlike Set it returns store errors (and ErrNoStore),
// since its answer is the point of the call.
func Add[T any](ctx context.Context, c *Cache, key string, v T, ttl time.Duration) (bool, error) {
	data, err := encodeValue(c.codecOrDefault(), v)
	if err != nil {
		return false, err
	}
	if !c.core().HasStore() {
		return false, ErrNoStore
	}
	ok, err := c.core().Add(ctx, keyspace.Value+key, data, c.core().TTL(ttl))
	if ok {
		c.core().Counters().Stores.Add(1)
	}
	return ok, err
}

// GetOrSet returns the value under key, or calls loader, stores its result
// for ttl and returns it. Concurrent callers of one cold key in this process
// share one loader call (the first caller's options apply to it); the call
// runs with its own context, cancelled only when every caller has gone.
//
// A loader error is returned and nothing is cached. A zero result is not
// cached unless [CacheZero] is given. A store error is logged and counted,
// and the loader's result is returned, unless the call is [Strict].
func GetOrSet[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, loader func(ctx context.Context) (T, error), opts ...CallOption) (T, error) {
	if loader == nil {
		var zero T
		return zero, errors.New("echocache: GetOrSet needs a loader")
	}
	skey := keyspace.Value + key
	return loadValue(ctx, c, FeatureValue, skey, skey, ttl, applyOptions(opts), loader)
}

// GetMany returns the values stored under keys that hold a usable value;
// missing, expired and corrupt ones are absent from the map (corrupt ones
// are deleted). A store error gives an empty map and no error, unless the
// call is [Strict]. A key holding a value that a T cannot hold is absent
// too and kept in the store; a Strict call returns those mismatches,
// joined, with the map of the usable values (see [TypeMismatchError]).
// When one server of a store spread over several fails
// ([stores.ErrNodeDown]), the values held by the other servers are
// returned and that server's keys are absent; a Strict call also returns
// the error.
func GetMany[T any](ctx context.Context, c *Cache, keys []string, opts ...CallOption) (map[string]T, error) {
	o := applyOptions(opts)
	out := make(map[string]T, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if !c.core().HasStore() {
		for range keys {
			c.bypass(ctx, FeatureValue, BypassNoStore)
		}
		return out, failOpenErr(ErrNoStore, o)
	}
	skeys := make([]string, len(keys))
	for i, k := range keys {
		skeys[i] = keyspace.Value + k
	}
	found, err := c.core().GetMany(ctx, skeys)
	if err != nil && !errors.Is(err, stores.ErrNodeDown) {
		for range keys {
			c.countFailedLookup(ctx, FeatureValue, err)
		}
		return out, failOpenErr(err, o)
	}
	nodeErr := err // the values of the servers that answered are in found
	var corrupt []string
	var mismatches []error
	codec, verify := c.codec(), c.core().Verifies()
	for i, sk := range skeys {
		data, ok := found[sk]
		if !ok {
			if nodeErr != nil && nodeDownKey(nodeErr, sk) {
				c.countFailedLookup(ctx, FeatureValue, nodeErr)
			} else {
				c.countLookup(ctx, FeatureValue, ResultMiss)
			}
			continue
		}
		v, err := decodeValue[T](codec, data, verify)
		if err != nil {
			c.countLookup(ctx, FeatureValue, ResultMiss)
			if mm := asMismatch(err, sk); mm != nil {
				c.core().Logf("reading %v; the entry is kept", mm)
				mismatches = append(mismatches, mm)
				continue
			}
			c.core().Counters().Corrupt.Add(1)
			c.core().Logf("dropping corrupt value %q: %v", sk, err)
			corrupt = append(corrupt, sk)
			continue
		}
		c.countLookup(ctx, FeatureValue, ResultHit)
		out[keys[i]] = v
	}
	if len(corrupt) > 0 {
		_ = c.core().Delete(ctx, corrupt...)
	}
	if o.strict && (len(mismatches) > 0 || nodeErr != nil) {
		return out, errors.Join(append(mismatches, nodeErr)...)
	}
	return out, nil
}

// SetMany stores every item for ttl, like [Set]. An error encoding any value
// is returned before anything is stored, and every key of items is deleted
// (none got its new value); a store error is logged and counted but not
// returned, unless the call is [Strict].
func SetMany[T any](ctx context.Context, c *Cache, items map[string]T, ttl time.Duration, opts ...CallOption) error {
	o := applyOptions(opts)
	if len(items) == 0 {
		return nil
	}
	codec := c.codecOrDefault()
	enc := make(map[string][]byte, len(items))
	for k, v := range items {
		data, err := encodeValue(codec, v)
		if err != nil {
			skeys := make([]string, 0, len(items))
			for k := range items {
				skeys = append(skeys, keyspace.Value+k)
			}
			return c.unencodable(ctx, fmt.Errorf("echocache: SetMany key %q: %w", k, err), skeys...)
		}
		enc[keyspace.Value+k] = data
	}
	if !c.core().HasStore() {
		return failOpenErr(ErrNoStore, o)
	}
	if err := c.core().SetMany(ctx, enc, c.core().TTL(ttl)); err != nil {
		return failOpenErr(err, o)
	}
	c.core().Counters().Stores.Add(uint64(len(items)))
	return nil
}

// Delete removes the value under key (written by Set, GetOrSet, Incr or a
// Function of that key). Deleting an absent key is not an error. Store
// errors are returned: a failed invalidation must not go unnoticed.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if !c.core().HasStore() {
		return ErrNoStore
	}
	return c.core().Delete(ctx, keyspace.Value+key)
}

// DeleteMany removes the values under keys; absent keys are not an error.
// Store errors are returned.
func (c *Cache) DeleteMany(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if !c.core().HasStore() {
		return ErrNoStore
	}
	skeys := make([]string, len(keys))
	for i, k := range keys {
		skeys[i] = keyspace.Value + k
	}
	return c.core().Delete(ctx, skeys...)
}

// Has reports whether a value is stored under key. It does not check that
// the value decodes. Store errors are returned.
func (c *Cache) Has(ctx context.Context, key string) (bool, error) {
	if !c.core().HasStore() {
		return false, ErrNoStore
	}
	_, err := c.core().Get(ctx, keyspace.Value+key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, stores.ErrNotFound):
		return false, nil
	}
	return false, err
}

// Incr atomically adds delta (which may be negative) to the integer stored
// under key and returns the new value. The entry keeps its expiry, on every
// store and whatever the signs of the value and of delta (Redis's INCRBY);
// an absent key is created holding delta, with no expiry. Integers written
// by Set or GetOrSet can be incremented, and Get of any integer type reads
// what Incr wrote. A value that is not an integer gives an error wrapping
// stores.ErrNotInteger and is left as it was. A store without an atomic
// counter (see stores.Incrementer) gives an error wrapping
// errors.ErrUnsupported. Store errors are returned.
func (c *Cache) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if !c.core().HasStore() {
		return 0, ErrNoStore
	}
	return c.core().Incr(ctx, keyspace.Value+key, delta)
}

// nodeDownKey reports whether err, which wraps stores.ErrNodeDown, names
// key among the keys of a server that did not answer: such a key's miss
// is a failed lookup. A NodeError without keys concerns every key.
func nodeDownKey(err error, key string) bool {
	switch e := err.(type) {
	case *stores.NodeError:
		return e.Keys == nil || slices.Contains(e.Keys, key)
	case interface{ Unwrap() []error }:
		return slices.ContainsFunc(e.Unwrap(), func(err error) bool { return nodeDownKey(err, key) })
	case interface{ Unwrap() error }:
		return nodeDownKey(e.Unwrap(), key)
	}
	return false
}

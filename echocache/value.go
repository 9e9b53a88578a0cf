package echocache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/stores"
)

// ErrNotFound is returned by [Get] when the key holds no usable value: it is
// absent, expired, corrupt, or the store could not be asked (fail-open). It
// is stores.ErrNotFound, so either sentinel matches with errors.Is.
var ErrNotFound = stores.ErrNotFound

// Stored layout of a typed value: a record (internal/record: "EC", the
// kind 'V', the version, a payload, a CRC-32C), or a decimal integer. The
// payload's first byte tells what follows, so a cached zero value is told
// apart from a miss and a corrupt entry is recognised instead of misread:
//
//   - 'V' then the codec's encoding of the value;
//   - 'S' then the bytes of a string, 'B' then the bytes of a []byte: the
//     common text and HTML results skip the codec;
//   - 'Z' alone: the zero value of the type (nil, 0, "", an empty struct);
//
// Values of integer kinds are stored unframed, as decimal text (first byte
// a digit or '-'), so that Cache.Incr works on them and Get reads what Incr
// wrote. Values written before records were framed (a bare format byte)
// do not open: they are misses, deleted like corrupt entries, and the next
// write replaces them.
const (
	valueVersion = 1

	fmtValue  byte = 'V'
	fmtString byte = 'S'
	fmtBytes  byte = 'B'
	fmtZero   byte = 'Z'
)

// errCorruptValue wraps every decoding failure of a stored value.
var errCorruptValue = errors.New("echocache: corrupt cached value")

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

func (c *Cache) codec() Codec {
	if cd, ok := c.core().Codec().(Codec); ok {
		return cd
	}
	return DefaultCodec
}

// storedAsInteger reports whether values of kind k are stored as decimal text.
func storedAsInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// isZeroValue reports whether v is the zero value of T.
func isZeroValue[T any](v *T) bool { return reflect.ValueOf(v).Elem().IsZero() }

// frameValue returns the record of a value: format byte f, then data.
func frameValue[S string | []byte](f byte, data S) []byte {
	b := record.Begin(make([]byte, 0, record.Overhead+1+len(data)), record.Value, valueVersion)
	b = append(b, f)
	return record.Seal(append(b, data...))
}

// encodeValue returns the stored form of v.
func encodeValue[T any](codec Codec, v T) ([]byte, error) {
	switch x := any(v).(type) {
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case string:
		if x == "" {
			return frameValue(fmtZero, ""), nil
		}
		return frameValue(fmtString, x), nil
	case []byte:
		if x == nil {
			return frameValue(fmtZero, ""), nil
		}
		return frameValue(fmtBytes, x), nil
	}
	rv := reflect.ValueOf(&v).Elem()
	if storedAsInteger(rv.Kind()) {
		if rv.CanInt() {
			return strconv.AppendInt(nil, rv.Int(), 10), nil
		}
		return strconv.AppendUint(nil, rv.Uint(), 10), nil
	}
	if rv.IsZero() {
		return frameValue(fmtZero, ""), nil
	}
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("echocache: encoding %T: %w", v, err)
	}
	return frameValue(fmtValue, b), nil
}

// decodeValue reads a stored form written by encodeValue (or by Incr) into
// a T. Bytes that break the layout, fail the record's checksum (checked
// with verify: bytes from outside the process) or fail the codec's own
// format check give an error wrapping errCorruptValue; a well-formed value
// that a T cannot hold gives a *TypeMismatchError (Key unset). It never
// panics on malformed data.
func decodeValue[T any](codec Codec, data []byte, verify bool) (v T, err error) {
	defer func() {
		// A codec that panics on malformed input must not crash the caller.
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: decoder panicked: %v", errCorruptValue, r)
		}
	}()
	if len(data) == 0 {
		return v, fmt.Errorf("%w: empty", errCorruptValue)
	}
	if b := data[0]; b == '-' || '0' <= b && b <= '9' {
		return decodeInteger[T](data)
	}
	data, err = record.Open(data, record.Value, valueVersion, verify)
	if err != nil || len(data) == 0 {
		return v, fmt.Errorf("%w: %v", errCorruptValue, cmp.Or(err, errors.New("empty record")))
	}
	switch b := data[0]; {
	case b == fmtZero && len(data) == 1:
		return v, nil
	case b == fmtString:
		switch p := any(&v).(type) {
		case *string:
			*p = string(data[1:])
			return v, nil
		case *any:
			*p = string(data[1:])
			return v, nil
		}
		return v, mismatch[T]("string", nil)
	case b == fmtBytes:
		switch p := any(&v).(type) {
		case *[]byte:
			*p = append([]byte{}, data[1:]...)
			return v, nil
		case *any:
			*p = append([]byte{}, data[1:]...)
			return v, nil
		}
		return v, mismatch[T]("[]byte", nil)
	case b == fmtValue:
		checker, canCheck := codec.(FormatChecker)
		if canCheck && !checker.WellFormed(data[1:]) {
			return v, fmt.Errorf("%w: not a well-formed %T encoding", errCorruptValue, codec)
		}
		if err := codec.Unmarshal(data[1:], &v); err != nil {
			var zero T
			// Well-formed (or not checkable): the bytes may be fine for
			// the type they were written with.
			return zero, mismatch[T]("encoded value", err)
		}
		return v, nil
	}
	return v, fmt.Errorf("%w: unknown format byte %#x", errCorruptValue, data[0])
}

// decodeInteger reads a value stored as decimal text (an integer kind, or
// a counter written by Incr). Text that is not a decimal int64 or uint64 is
// corrupt; an integer that T cannot hold is a type mismatch.
func decodeInteger[T any](data []byte) (v T, err error) {
	text := string(data)
	n, serr := strconv.ParseInt(text, 10, 64)
	u, uerr := strconv.ParseUint(text, 10, 64)
	if serr != nil && uerr != nil {
		return v, fmt.Errorf("%w: %q is not a 64-bit decimal integer", errCorruptValue, data)
	}
	if p, ok := any(&v).(*any); ok {
		if serr == nil {
			*p = n
		} else {
			*p = u
		}
		return v, nil
	}
	rv := reflect.ValueOf(&v).Elem()
	switch {
	case !storedAsInteger(rv.Kind()):
	case rv.CanInt() && serr == nil && !rv.OverflowInt(n):
		rv.SetInt(n)
		return v, nil
	case rv.CanUint() && uerr == nil && !rv.OverflowUint(u):
		rv.SetUint(u)
		return v, nil
	}
	return v, mismatch[T]("integer "+text, nil)
}

// mismatch reports a stored value of the given kind read as a T.
func mismatch[T any](stored string, err error) error {
	return &TypeMismatchError{Stored: stored, Want: reflect.TypeFor[T]().String(), Err: err}
}

// ErrTypeMismatch is matched (with errors.Is) by every [TypeMismatchError].
var ErrTypeMismatch = errors.New("echocache: cached value has another type")

// TypeMismatchError reports a cached value read with a Go type that cannot
// hold it: Get[int] of a key Set with a string, Get[int8] of 1000, a struct
// read as another struct whose fields do not fit. It is the caller's
// mistake, not the store's: the entry is kept for the readers of its own
// type, and only bytes that fail their format's own checks are dropped as
// corrupt (see [FormatChecker]).
//
// [Get] returns it wrapped together with ErrNotFound (a miss) unless the
// call is [Strict], which returns it alone. [GetMany] leaves the key out
// of its map (and returns the mismatches, joined, when Strict). [GetOrSet],
// [Func.Get] and [Memoized.Get] call the loader and return its result
// without storing it, so the entry survives, or, when Strict, return the
// error without calling the loader. Each mismatch is logged and counted as
// a miss.
type TypeMismatchError struct {
	// Key is the entry's key in the store's namespace: v:<key> for the
	// typed API and Function, m:<name>:<version>:<argument> for Memoize.
	Key string
	// Stored says what the entry holds: "string", "[]byte", "integer N"
	// or "encoded value" (a value encoded by the Codec).
	Stored string
	// Want is the Go type asked for, as reflect prints it ("int",
	// "main.User").
	Want string
	// Err is the codec's error for an encoded value, or nil.
	Err error
}

// Error implements error.
func (e *TypeMismatchError) Error() string {
	msg := fmt.Sprintf("echocache: %q holds a %s, which a %s cannot hold", e.Key, e.Stored, e.Want)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrTypeMismatch.
func (e *TypeMismatchError) Is(target error) bool { return target == ErrTypeMismatch }

// Unwrap returns the codec's error, or nil.
func (e *TypeMismatchError) Unwrap() error { return e.Err }

// lookupValue reads and decodes the entry under the full store key skey. hit
// reports a usable value. err is a store error (the store could not be
// asked) or a *TypeMismatchError (the entry holds a value a T cannot hold;
// it is kept), never a miss. A corrupt entry is logged, deleted and
// reported as a miss.
func lookupValue[T any](ctx context.Context, c *Cache, skey string) (v T, hit bool, err error) {
	if !c.core().HasStore() {
		return v, false, ErrNoStore
	}
	data, err := c.core().Get(ctx, skey)
	if err != nil {
		c.core().Counters().Misses.Add(1)
		if errors.Is(err, stores.ErrNotFound) {
			return v, false, nil
		}
		return v, false, err
	}
	v, err = decodeValue[T](c.codec(), data, c.core().Verifies())
	if err != nil {
		c.core().Counters().Misses.Add(1)
		if mm := asMismatch(err, skey); mm != nil {
			c.core().Logf("reading %v; the entry is kept", mm)
			return v, false, mm
		}
		c.core().Logf("dropping %q: %v", skey, err)
		_ = c.core().Delete(ctx, skey)
		return v, false, nil
	}
	c.core().Counters().Hits.Add(1)
	return v, true, nil
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

// failOpenErr decides what a fail-open call does with a store error: nil for a
// miss, the error itself in strict mode. ErrNoStore counts as a store error
// only in strict mode.
func failOpenErr(err error, o callOptions) error {
	if err == nil || !o.strict {
		return nil
	}
	return err
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
	v, hit, err := lookupValue[T](ctx, c, keyspace.Value+key)
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
// read back as a hit. An error encoding v is returned; a store error is
// logged and counted but not returned, unless the call is [Strict].
func Set[T any](ctx context.Context, c *Cache, key string, v T, ttl time.Duration, opts ...CallOption) error {
	o := applyOptions(opts)
	data, err := encodeValue(c.codecOrDefault(), v)
	if err != nil {
		return err
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
	return loadValue(ctx, c, skey, skey, ttl, applyOptions(opts), loader)
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
		return out, failOpenErr(ErrNoStore, o)
	}
	skeys := make([]string, len(keys))
	for i, k := range keys {
		skeys[i] = keyspace.Value + k
	}
	found, err := c.core().GetMany(ctx, skeys)
	if err != nil && !errors.Is(err, stores.ErrNodeDown) {
		c.core().Counters().Misses.Add(uint64(len(keys)))
		return out, failOpenErr(err, o)
	}
	nodeErr := err // the values of the servers that answered are in found
	var corrupt []string
	var mismatches []error
	codec, verify := c.codec(), c.core().Verifies()
	for i, sk := range skeys {
		data, ok := found[sk]
		if !ok {
			c.core().Counters().Misses.Add(1)
			continue
		}
		v, err := decodeValue[T](codec, data, verify)
		if err != nil {
			c.core().Counters().Misses.Add(1)
			if mm := asMismatch(err, sk); mm != nil {
				c.core().Logf("reading %v; the entry is kept", mm)
				mismatches = append(mismatches, mm)
				continue
			}
			c.core().Logf("dropping %q: %v", sk, err)
			corrupt = append(corrupt, sk)
			continue
		}
		c.core().Counters().Hits.Add(1)
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
// is returned before anything is stored; a store error is logged and counted
// but not returned, unless the call is [Strict].
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
			return fmt.Errorf("echocache: SetMany key %q: %w", k, err)
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

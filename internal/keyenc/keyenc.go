// Package keyenc turns Go values into cache keys: the one encoder behind
// Memoize's argument keys (echocache) and the vary-on values of template
// fragments (pongotag.FragmentKey and the {% cache %} tag).
//
// The rules, the same for both:
//
//   - A value whose type implements echocache.Keyer (CacheKey() string) is
//     keyed by its CacheKey; one that implements encoding.TextMarshaler
//     (time.Time, netip.Addr, uuid.UUID...) by its text.
//   - Otherwise by value: booleans; integers of every type by their value
//     (5, int64(5) and uint8(5) are one key); floats by value (-0 and +0
//     are one key, every NaN is one NaN); strings and byte slices by their
//     bytes (a string and a []byte are not one key); slices and arrays
//     element by element; maps by their entries in a fixed order;
//     pointers and interfaces by what they hold (nil is one key); structs
//     by every field, exported or not (the blank field aside), as ==
//     compares them.
//   - Where the Go type is not fixed (a value passed as any, an interface
//     field), a struct, a Keyer or a TextMarshaler is preceded by its
//     type's name, so that two types with the same fields never share a
//     key; a pointer is named by the type it points to. Where the type is
//     fixed (a Memoize argument's type, its fields), names are left out.
//   - Functions, channels and unsafe pointers have no value to key on, and
//     neither does a value nested more than MaxDepth levels (a cycle): they
//     give ErrUnkeyable. A type that holds one where the type alone tells
//     (not behind an interface) is refused by For.
//
// The encoding is text where it can be (keys stay readable in redis-cli)
// and prefix-free: every value starts with a kind byte, and every
// variable-length part carries its length, so two different sequences of
// values never encode alike.
package keyenc

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"unsafe"
)

// ErrUnkeyable is returned, wrapped with the reason, for a value that has
// no key. echocache.ErrUnkeyable and pongotag.ErrUnkeyable are this error.
var ErrUnkeyable = errors.New("echocache: value cannot be used as a cache key")

// MaxDepth bounds the nesting of a value (and breaks cycles).
const MaxDepth = 32

// keyer is echocache.Keyer (and pongotag.Keyer, an alias of it).
type keyer interface{ CacheKey() string }

var (
	keyerType = reflect.TypeFor[keyer]()
	textType  = reflect.TypeFor[encoding.TextMarshaler]()
)

// An Encoder appends the key of a value of the type it was made for.
type Encoder func(b []byte, v reflect.Value) ([]byte, error)

// encFunc is a compiled encoder; depth is the nesting of v.
type encFunc func(b []byte, v reflect.Value, depth int) ([]byte, error)

type compiled struct {
	enc encFunc
	err error
	tag []byte // written before a value of the type where types vary
}

var (
	encoders sync.Map // reflect.Type -> compiled
	unwraps  sync.Map // reflect.Type -> func(reflect.Value) reflect.Value
)

// RegisterUnwrap makes values of type t keyed by the value unwrap returns
// for them: pongotag registers *pongo2.Value, keyed by the value it holds.
// Call it from an init function, before any value of t is encoded.
func RegisterUnwrap(t reflect.Type, unwrap func(v reflect.Value) reflect.Value) {
	unwraps.Store(t, unwrap)
}

// For returns the encoder of values of type t, or an error wrapping
// ErrUnkeyable when the type alone tells that its values have no key.
func For(t reflect.Type) (Encoder, error) {
	enc, err := compile(t)
	if err != nil {
		return nil, err
	}
	return func(b []byte, v reflect.Value) ([]byte, error) { return enc(b, v, 0) }, nil
}

// Append appends the key of v to b.
func Append(b []byte, v any) ([]byte, error) {
	return appendDynamic(b, reflect.ValueOf(v), 0)
}

// AppendString appends the key of a string: what the encoder of the string
// type writes, for callers that skip reflection on common types.
func AppendString(b []byte, s string) []byte {
	b = append(b, 's')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// AppendInt appends the key of an integer of any type holding n.
func AppendInt(b []byte, n int64) []byte {
	b = append(b, 'i')
	return append(strconv.AppendInt(b, n, 10), ',')
}

// appendDynamic appends the key of a value whose type is not fixed: with
// the type's tag (see typeTag), unless it is a nil pointer.
func appendDynamic(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if !v.IsValid() {
		return append(b, 'n'), nil
	}
	t := v.Type()
	if _, err := compile(t); err != nil {
		return b, err
	}
	c, _ := encoders.Load(t)
	cc := c.(compiled)
	if len(cc.tag) > 0 && !(t.Kind() == reflect.Pointer && v.IsNil()) {
		b = append(b, cc.tag...)
	}
	return cc.enc(b, v, depth)
}

// typeTag names t where types vary: "@" and the length-prefixed name of
// the type a struct, Keyer or TextMarshaler is (through pointers), or
// nothing for other kinds, which are keyed by value across types.
func typeTag(t reflect.Type) []byte {
	if _, ok := unwraps.Load(t); ok {
		return nil // the value it unwraps to is tagged
	}
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.Struct || t.Kind() != reflect.Interface && (t.Implements(keyerType) || t.Implements(textType)) ||
		base.Implements(keyerType) || base.Implements(textType) {
		return appendLen([]byte{'@'}, typeName(base))
	}
	return nil
}

// compile returns the cached encoder of t, building it once. A recursive
// type finds a placeholder that waits for its own encoder.
func compile(t reflect.Type) (encFunc, error) {
	if c, ok := encoders.Load(t); ok {
		return c.(compiled).enc, c.(compiled).err
	}
	var (
		wg  sync.WaitGroup
		enc encFunc
	)
	wg.Add(1)
	tag := typeTag(t)
	c, loaded := encoders.LoadOrStore(t, compiled{tag: tag, enc: func(b []byte, v reflect.Value, depth int) ([]byte, error) {
		wg.Wait()
		return enc(b, v, depth)
	}})
	if loaded {
		return c.(compiled).enc, c.(compiled).err
	}
	enc, err := newEncoder(t)
	if err != nil {
		enc = func(b []byte, _ reflect.Value, _ int) ([]byte, error) { return b, err }
	}
	wg.Done()
	encoders.Store(t, compiled{enc: enc, err: err, tag: tag})
	return enc, err
}

// typeName names a type in keys: its package path and name, or its
// literal for unnamed types.
func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

func appendLen(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func tooDeep() error {
	return fmt.Errorf("%w: nested more than %d levels (a cycle?)", ErrUnkeyable, MaxDepth)
}

// exported returns v as a value whose methods can be called even when it
// was reached through an unexported field. v is addressable there (see
// the struct encoder).
func exported(v reflect.Value) reflect.Value {
	if v.CanInterface() || !v.CanAddr() {
		return v
	}
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

func newEncoder(t reflect.Type) (encFunc, error) {
	if u, ok := unwraps.Load(t); ok {
		unwrap := u.(func(reflect.Value) reflect.Value)
		nilable := t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface
		return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
			if nilable && v.IsNil() {
				return append(b, 'n'), nil
			}
			if depth > MaxDepth {
				return b, tooDeep()
			}
			return appendDynamic(b, unwrap(exported(v)), depth+1)
		}, nil
	}
	if t.Kind() != reflect.Interface {
		switch {
		case t.Implements(keyerType):
			return nilSafe(t, func(b []byte, v reflect.Value, _ int) ([]byte, error) {
				return appendLen(append(b, 'K'), exported(v).Interface().(keyer).CacheKey()), nil
			}), nil
		case t.Implements(textType):
			return nilSafe(t, func(b []byte, v reflect.Value, _ int) ([]byte, error) {
				text, err := exported(v).Interface().(encoding.TextMarshaler).MarshalText()
				if err != nil {
					return b, fmt.Errorf("%w: %s.MarshalText: %v", ErrUnkeyable, t, err)
				}
				return appendLen(append(b, 'T'), string(text)), nil
			}), nil
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			if v.Bool() {
				return append(b, 't'), nil
			}
			return append(b, 'f'), nil
		}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			return AppendInt(b, v.Int()), nil
		}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			if u := v.Uint(); u > math.MaxInt64 {
				return append(strconv.AppendUint(append(b, 'u'), u, 10), ','), nil
			}
			return AppendInt(b, int64(v.Uint())), nil
		}, nil
	case reflect.Float32, reflect.Float64:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			return appendFloat(append(b, 'd'), v.Float()), nil
		}, nil
	case reflect.Complex64, reflect.Complex128:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			c := v.Complex()
			return appendFloat(appendFloat(append(b, 'c'), real(c)), imag(c)), nil
		}, nil
	case reflect.String:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			return AppendString(b, v.String()), nil
		}, nil
	case reflect.Slice, reflect.Array:
		return sequenceEncoder(t)
	case reflect.Map:
		return mapEncoder(t)
	case reflect.Struct:
		return structEncoder(t)
	case reflect.Pointer:
		elem, err := compile(t.Elem())
		if err != nil {
			return nil, err
		}
		return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
			if v.IsNil() {
				return append(b, 'n'), nil
			}
			if depth > MaxDepth {
				return b, tooDeep()
			}
			return elem(b, v.Elem(), depth+1)
		}, nil
	case reflect.Interface:
		return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
			if v.IsNil() {
				return append(b, 'n'), nil
			}
			if depth > MaxDepth {
				return b, tooDeep()
			}
			return appendDynamic(b, exported(v).Elem(), depth+1)
		}, nil
	}
	return nil, fmt.Errorf("%w: %s has no value to key on (use an ID, a string, or implement CacheKey() string)", ErrUnkeyable, t)
}

// nilSafe keys a nil pointer (or nil interface value) as nil rather than
// calling its method.
func nilSafe(t reflect.Type, enc encFunc) encFunc {
	if t.Kind() != reflect.Pointer {
		return enc
	}
	return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
		if v.IsNil() {
			return append(b, 'n'), nil
		}
		return enc(b, v, depth)
	}
}

// appendFloat encodes a float by value: -0 and 0 are one value, and every
// NaN is the same NaN.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 0:
		f = 0
	case math.IsNaN(f):
		return append(b, "NaN,"...)
	}
	return append(strconv.AppendFloat(b, f, 'g', -1, 64), ',')
}

func sequenceEncoder(t reflect.Type) (encFunc, error) {
	if t.Elem().Kind() == reflect.Uint8 && !t.Elem().Implements(keyerType) && !t.Elem().Implements(textType) {
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			b = append(b, 'y')
			b = strconv.AppendInt(b, int64(v.Len()), 10)
			b = append(b, ':')
			if v.Kind() == reflect.Slice {
				return append(b, v.Bytes()...), nil
			}
			for i := range v.Len() {
				b = append(b, byte(v.Index(i).Uint()))
			}
			return b, nil
		}, nil
	}
	elem, err := compile(t.Elem())
	if err != nil {
		return nil, err
	}
	return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
		if depth > MaxDepth {
			return b, tooDeep()
		}
		b = append(b, 'l')
		b = strconv.AppendInt(b, int64(v.Len()), 10)
		b = append(b, ':')
		var err error
		for i := range v.Len() {
			if b, err = elem(b, v.Index(i), depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	}, nil
}

func mapEncoder(t reflect.Type) (encFunc, error) {
	kenc, err := compile(t.Key())
	if err != nil {
		return nil, err
	}
	venc, err := compile(t.Elem())
	if err != nil {
		return nil, err
	}
	type entry struct{ k, v []byte }
	return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
		if depth > MaxDepth {
			return b, tooDeep()
		}
		entries := make([]entry, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := kenc(nil, it.Key(), depth+1)
			if err != nil {
				return b, err
			}
			e, err := venc(nil, it.Value(), depth+1)
			if err != nil {
				return b, err
			}
			entries = append(entries, entry{k, e})
		}
		slices.SortFunc(entries, func(x, y entry) int {
			if c := bytes.Compare(x.k, y.k); c != 0 {
				return c
			}
			return bytes.Compare(x.v, y.v)
		})
		b = append(b, 'm')
		b = strconv.AppendInt(b, int64(len(entries)), 10)
		b = append(b, ':')
		for _, e := range entries {
			b = append(append(b, e.k...), e.v...)
		}
		return b, nil
	}, nil
}

func structEncoder(t reflect.Type) (encFunc, error) {
	type field struct {
		index int
		enc   encFunc
	}
	var fields []field
	unexported := false
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "_" {
			continue // blank fields take no part in ==
		}
		enc, err := compile(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		unexported = unexported || !f.IsExported()
		fields = append(fields, field{index: i, enc: enc})
	}
	prefix := strconv.AppendInt([]byte{'S'}, int64(len(fields)), 10)
	prefix = append(prefix, ':')
	return func(b []byte, v reflect.Value, depth int) ([]byte, error) {
		if depth > MaxDepth {
			return b, tooDeep()
		}
		if unexported && !v.CanAddr() {
			// The methods of unexported fields' values (a Keyer, a
			// time.Time) can only be called through their address.
			p := reflect.New(t).Elem()
			p.Set(v)
			v = p
		}
		b = append(b, prefix...)
		var err error
		for _, f := range fields {
			if b, err = f.enc(b, exported(v.Field(f.index)), depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	}, nil
}

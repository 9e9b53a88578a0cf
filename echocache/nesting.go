package echocache

import (
	"encoding"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// The nesting check of a value before a Codec encodes it. Encoders walk a
// value recursively, and CBOR's and gob's do not look for cycles: a value
// that refers to itself (a map that holds itself, a struct whose pointer
// field leads back to it) would recurse until the process dies of a stack
// overflow, which no recover catches. So a value whose type can nest
// without bound (it holds an interface, or its type refers to itself) is
// walked first, and one nested deeper than MaxValueDepth is refused with
// ErrValueTooDeep. Types whose nesting the type itself bounds (a []User of
// strings and numbers, say) are not walked: they cost nothing.

// MaxValueDepth is how deeply the arrays, slices, maps and structs of a
// value written through the typed API may nest: the nesting the default
// codec's decoder reads back (CBORCodec reads 1000 levels).
const MaxValueDepth = 1000

// maxIndirections bounds the pointers and interfaces followed in a row
// without a container between them (a pointer to an interface holding the
// pointer, say).
const maxIndirections = 64

// ErrValueTooDeep is returned, wrapped with the value's type, by Set,
// SetMany, Add, GetOrSet and the Memoize and Function results for a value
// nested deeper than MaxValueDepth levels, or that refers to itself.
var ErrValueTooDeep = errors.New("echocache: value nests too deep to encode (does it refer to itself?)")

// Types whose encoding is their own: the walk stops at them.
var (
	cborMarshalerType   = reflect.TypeFor[cbor.Marshaler]()
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	gobEncoderType      = reflect.TypeFor[gob.GobEncoder]()
)

func marshalsItself(t reflect.Type) bool {
	for _, it := range []reflect.Type{cborMarshalerType, jsonMarshalerType, textMarshalerType, binaryMarshalerType, gobEncoderType} {
		if t.Implements(it) || t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(it) {
			return true
		}
	}
	return false
}

// unboundedTypes caches unbounded, by reflect.Type.
var unboundedTypes sync.Map

// unbounded reports whether values of t can nest without a bound its type
// sets: t holds an interface, or refers to itself.
func unbounded(t reflect.Type) bool {
	if v, ok := unboundedTypes.Load(t); ok {
		return v.(bool)
	}
	u := unboundedIn(t, map[reflect.Type]bool{})
	unboundedTypes.Store(t, u)
	return u
}

func unboundedIn(t reflect.Type, onPath map[reflect.Type]bool) bool {
	if onPath[t] {
		return true // the type refers to itself
	}
	if marshalsItself(t) {
		return false
	}
	onPath[t] = true
	defer delete(onPath, t)
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return unboundedIn(t.Elem(), onPath)
	case reflect.Map:
		return unboundedIn(t.Key(), onPath) || unboundedIn(t.Elem(), onPath)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); encodedField(f) && unboundedIn(f.Type, onPath) {
				return true
			}
		}
	}
	return false
}

// encodedField reports whether the codecs encode a struct field: exported
// or embedded, and not tagged "-".
func encodedField(f reflect.StructField) bool {
	if !f.IsExported() && !f.Anonymous {
		return false
	}
	return f.Tag.Get("cbor") != "-" && f.Tag.Get("json") != "-"
}

// checkNesting returns an error wrapping ErrValueTooDeep when v nests
// deeper than MaxValueDepth (a value that refers to itself nests without
// end), or nil.
func checkNesting(v reflect.Value) error {
	if !v.IsValid() || !unbounded(v.Type()) {
		return nil
	}
	if !nestingWithin(v, 0, 0) {
		return fmt.Errorf("%w (more than %d levels)", ErrValueTooDeep, MaxValueDepth)
	}
	return nil
}

// nestingWithin reports whether v nests at most MaxValueDepth containers
// deep, depth being the containers around it and hops the pointers and
// interfaces followed since the last.
func nestingWithin(v reflect.Value, depth, hops int) bool {
	t := v.Type()
	if !unbounded(t) {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return true
		}
		if hops >= maxIndirections {
			return false
		}
		return nestingWithin(v.Elem(), depth, hops+1)
	}
	if depth >= MaxValueDepth {
		return false
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !nestingWithin(v.Index(i), depth+1, 0) {
				return false
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if !nestingWithin(it.Key(), depth+1, 0) || !nestingWithin(it.Value(), depth+1, 0) {
				return false
			}
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if encodedField(t.Field(i)) && !nestingWithin(v.Field(i), depth+1, 0) {
				return false
			}
		}
	}
	return true
}

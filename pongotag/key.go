package pongotag

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/keyspace"
)

// Keyer is implemented by values that choose their own identity as a
// vary-on value. CacheKey must return the same string for values that
// render the same and different strings otherwise.
type Keyer interface {
	CacheKey() string
}

// ErrUnkeyable is returned (wrapped, naming the value) by FragmentKey for a
// vary-on value that cannot be encoded: a func, a channel, a struct with no
// exported fields and no CacheKey or MarshalText method, or a value nested
// too deeply (a cycle). In a template such a value makes the block render
// uncached, with a warning.
var ErrUnkeyable = errors.New("pongotag: value cannot be used as a cache key")

// maxDepth bounds the nesting of vary-on values (and breaks cycles).
const maxDepth = 32

// Key layout. Every key is "f:" (echocache.FragmentPrefix), then
//
//	n:<name, at most 40 bytes>:<digest>   for a named block
//	u:<template, at most 40 bytes>:<digest>  for an unnamed block
//
// where digest is the unpadded base64url SHA-256 of an unambiguous,
// length-prefixed encoding of everything that identifies the fragment. The
// readable part is only there for people looking at a store; the digest
// alone decides.
const (
	shortLen = 40
)

func namedSeed(name string) []byte {
	b := []byte{'n', 0}
	b = append(b, truncate(name)...) // the readable part; the digest decides
	b = append(b, 0)
	return appendString(b, name)
}

func unnamedSeed(identity string, line, col int, body []byte) []byte {
	b := []byte{'u', 0}
	b = append(b, shortName(identity)...)
	b = append(b, 0)
	b = appendString(b, identity)
	b = appendInt(b, int64(line))
	b = appendInt(b, int64(col))
	return append(b, body...)
}

// shortName is the readable part of a key: at most shortLen bytes, cut at
// a rune boundary, with the directory of a template path dropped.
func shortName(s string) string {
	if strings.HasPrefix(s, "<string>") {
		return "<string>"
	}
	if i := lastSlash(s); i >= 0 {
		s = s[i+1:]
	}
	return truncate(s)
}

// truncate cuts s to at most shortLen bytes, at a rune boundary, and
// replaces NUL bytes (which end the readable part in a seed).
func truncate(s string) string {
	if len(s) > shortLen {
		s = s[:shortLen]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ReplaceAll(s, "\x00", "_")
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' || s[i] == '\\' {
			return i
		}
	}
	return -1
}

// finishKey turns an encoded identity (seed followed by the render's parts)
// into a store key. The seed starts with the kind and the readable part,
// separated by NUL bytes.
func finishKey(enc []byte) string {
	kind := enc[0]
	rest := enc[2:]
	short := rest[:bytes.IndexByte(rest, 0)]
	sum := sha256.Sum256(enc)
	tag := keyspace.FragmentUnnamed
	if kind == 'n' {
		tag = keyspace.FragmentNamed
	}
	b := make([]byte, 0, len(keyspace.Fragment)+len(tag)+len(short)+1+base64.RawURLEncoding.EncodedLen(len(sum)))
	b = append(b, keyspace.Fragment...)
	b = append(b, tag...)
	b = append(b, short...)
	b = append(b, ':')
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

func (n *cacheNode) finishKey(enc []byte) string { return finishKey(enc) }

func appendAutoescape(b []byte, on bool) []byte {
	if on {
		return append(b, 'A')
	}
	return append(b, 'a')
}

// renderKey builds the key of a block whose key depends on the render.
func (n *cacheNode) renderKey(ctx *pongo2.ExecutionContext) (string, *pongo2.Error, error) {
	enc := make([]byte, 0, len(n.seed)+64)
	enc = append(enc, n.seed...)
	if !n.named {
		enc = appendAutoescape(enc, ctx.Autoescape)
	}
	if n.chainDep {
		chain, err := n.chain()
		if err != nil {
			return "", nil, err
		}
		enc = append(enc, chain...)
	}
	enc = append(enc, 'v')
	enc = appendInt(enc, int64(len(n.vary)))
	for i, expr := range n.vary {
		v, perr := expr.Evaluate(ctx)
		if perr != nil {
			return "", perr, nil
		}
		var err error
		enc, err = appendValue(enc, reflect.ValueOf(v.Interface()), 0)
		if err != nil {
			return "", nil, fmt.Errorf("vary-on value %d: %w", i+1, err)
		}
	}
	return finishKey(enc), nil, nil
}

// FragmentKey returns the store key of the named cache block
// {% cache TTL "name" vary... %} rendered with the given vary-on values, as
// Django's and Flask-Caching's make_template_fragment_key do. Pass it to
// [echocache.Cache.DeleteFragment], or use [DeleteFragment].
//
// Vary-on values are encoded by value: integers of any type are equal when
// their values are (5, int64(5) and uint8(5) give one key), strings and
// byte slices by their bytes, slices and arrays element by element, maps
// by their entries in a fixed order, pointers and interfaces by what they
// point to, structs by their type and exported fields. A value that
// implements [Keyer] or encoding.TextMarshaler (time.Time, netip.Addr...)
// is encoded by what that returns. Unencodable values give ErrUnkeyable.
func FragmentKey(name string, vary ...any) (string, error) {
	if name == "" {
		return "", errors.New("pongotag: FragmentKey needs the name of a named cache block (unnamed blocks cannot be addressed)")
	}
	enc := namedSeed(name)
	if len(vary) == 0 {
		// The key of a named block without vary-on values is its seed
		// alone (see parseCacheTag).
		return finishKey(enc), nil
	}
	enc = append(enc, 'v')
	enc = appendInt(enc, int64(len(vary)))
	for i, v := range vary {
		var err error
		enc, err = appendValue(enc, reflect.ValueOf(v), 0)
		if err != nil {
			return "", fmt.Errorf("pongotag: FragmentKey %q: vary-on value %d: %w", name, i+1, err)
		}
	}
	return finishKey(enc), nil
}

// DeleteFragment deletes the fragment of the named cache block rendered
// with the given vary-on values (see [FragmentKey]) from c's store. It
// returns the store's error, or ErrUnkeyable for a bad vary-on value.
func DeleteFragment(ctx context.Context, c *echocache.Cache, name string, vary ...any) error {
	key, err := FragmentKey(name, vary...)
	if err != nil {
		return err
	}
	return c.DeleteFragment(ctx, key)
}

func appendInt(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendString(b []byte, s string) []byte {
	b = appendInt(b, int64(len(s)))
	return append(b, s...)
}

var (
	keyerType = reflect.TypeFor[Keyer]()
	textType  = reflect.TypeFor[encoding.TextMarshaler]()
	valueType = reflect.TypeFor[*pongo2.Value]()
)

// typeName names a type for the encoding: package path and name, or the
// type's literal for unnamed types.
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// appendValue appends an unambiguous encoding of v: every value starts
// with a kind byte and every variable-length part is length-prefixed, so
// no two different sequences of values encode alike.
func appendValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, fmt.Errorf("%w: nested more than %d levels (a cycle?)", ErrUnkeyable, maxDepth)
	}
	if !v.IsValid() {
		return append(b, 'N'), nil
	}
	t := v.Type()
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		if v.IsNil() {
			if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
				return append(b, 'N'), nil
			}
		}
	}
	if v.CanInterface() && !(t.Kind() == reflect.Pointer && v.IsNil()) {
		switch {
		case t == valueType:
			return appendValue(b, reflect.ValueOf(v.Interface().(*pongo2.Value).Interface()), depth+1)
		case t.Implements(keyerType):
			b = append(b, 'K')
			b = appendString(b, typeName(indirectType(t)))
			return appendString(b, v.Interface().(Keyer).CacheKey()), nil
		case t.Implements(textType):
			text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return b, fmt.Errorf("%w: %s.MarshalText: %v", ErrUnkeyable, t, err)
			}
			b = append(b, 'T')
			b = appendString(b, typeName(indirectType(t)))
			return appendString(b, string(text)), nil
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 'b', 1), nil
		}
		return append(b, 'b', 0), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(append(b, 'i'), v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u <= math.MaxInt64 {
			return appendInt(append(b, 'i'), int64(u)), nil
		}
		return binary.BigEndian.AppendUint64(append(b, 'u'), u), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(append(b, 'f'), v.Float()), nil
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		return appendFloat(appendFloat(append(b, 'c'), real(c)), imag(c)), nil
	case reflect.String:
		return appendString(append(b, 's'), v.String()), nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			b = append(b, 'y')
			b = appendInt(b, int64(v.Len()))
			if t.Kind() == reflect.Slice {
				return append(b, v.Bytes()...), nil
			}
			for i := range v.Len() {
				b = append(b, byte(v.Index(i).Uint()))
			}
			return b, nil
		}
		b = append(b, 'l')
		b = appendInt(b, int64(v.Len()))
		var err error
		for i := range v.Len() {
			if b, err = appendValue(b, v.Index(i), depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case reflect.Map:
		type entry struct{ k, v []byte }
		entries := make([]entry, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := appendValue(nil, it.Key(), depth+1)
			if err != nil {
				return b, err
			}
			e, err := appendValue(nil, it.Value(), depth+1)
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
		b = appendInt(b, int64(len(entries)))
		for _, e := range entries {
			b = append(append(b, e.k...), e.v...)
		}
		return b, nil
	case reflect.Struct:
		exported := 0
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				exported++
			}
		}
		if exported == 0 && t.NumField() > 0 {
			return b, fmt.Errorf("%w: struct %s has no exported fields (implement CacheKey() string or MarshalText)", ErrUnkeyable, t)
		}
		b = append(b, 'S')
		b = appendString(b, typeName(t))
		b = appendInt(b, int64(exported))
		var err error
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			b = appendString(b, f.Name)
			if b, err = appendValue(b, v.Field(i), depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case reflect.Pointer, reflect.Interface:
		return appendValue(b, v.Elem(), depth+1)
	}
	return b, fmt.Errorf("%w: %s", ErrUnkeyable, t)
}

func indirectType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// appendFloat encodes a float by value: -0 and 0 are one value, and every
// NaN is the same NaN.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 0:
		f = 0
	case math.IsNaN(f):
		f = math.NaN()
	}
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

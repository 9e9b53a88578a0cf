package pongotag

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/keyenc"
	"github.com/echocache/echocache/internal/keyspace"
)

// Keyer is implemented by values that choose their own identity as a
// vary-on value: it is [echocache.Keyer], which Memoize arguments honour
// too. CacheKey must return the same string for values that render the
// same and different strings otherwise.
type Keyer = echocache.Keyer

// ErrUnkeyable is returned (wrapped, naming the value) by FragmentKey for a
// vary-on value that cannot be encoded: a func, a channel, or a value
// nested too deeply (a cycle). In a template such a value makes the block
// render uncached, with a warning. It is [echocache.ErrUnkeyable].
var ErrUnkeyable = echocache.ErrUnkeyable

func init() {
	// A pongo2 value is keyed by the Go value it holds.
	keyenc.RegisterUnwrap(reflect.TypeFor[*pongo2.Value](), func(v reflect.Value) reflect.Value {
		return reflect.ValueOf(v.Interface().(*pongo2.Value).Interface())
	})
}

// Key layout. Every key is "f:" (internal/keyspace), then
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
		if enc, err = keyenc.Append(enc, v.Interface()); err != nil {
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
// Vary-on values are keyed by the rules Memoize keys its arguments by (one
// encoder serves both): a value that implements [Keyer] or
// encoding.TextMarshaler (time.Time, netip.Addr...) by what that returns;
// otherwise by value: integers of any type are equal when their values
// are (5, int64(5) and uint8(5) give one key), strings and byte slices by
// their bytes, slices and arrays element by element, maps by their entries
// in a fixed order, pointers and interfaces by what they point to, structs
// by their type and every field, exported or not. Unencodable values give
// ErrUnkeyable.
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
		if enc, err = keyenc.Append(enc, v); err != nil {
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

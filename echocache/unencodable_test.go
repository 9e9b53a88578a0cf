package echocache_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores/storetest"
)

// typedStores are the stores the typed-write tests run on: memory and a
// real redis.
func typedStores(t *testing.T) map[string]func(t *testing.T) *echocache.Cache {
	return map[string]func(t *testing.T) *echocache.Cache{
		"memory": func(t *testing.T) *echocache.Cache {
			return newTestCache(t, openStore(t, "memory://"), echocache.Config{})
		},
		"redis": func(t *testing.T) *echocache.Cache {
			u := servertest.Redis(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return newTestCache(t, openStore(t, u), echocache.Config{})
		},
	}
}

// node is a value that can refer to itself.
type node struct {
	Name string
	Next *node
	Any  any
}

// cyclic returns values that refer to themselves, each a different way.
func cyclic() map[string]any {
	n := &node{Name: "a"}
	n.Next = n
	m := map[string]any{"k": 1}
	m["self"] = m
	s := []any{1, nil}
	s[1] = s
	var p any
	p = &p
	viaAny := &node{Name: "b"}
	viaAny.Any = []any{viaAny}
	return map[string]any{"struct pointer": n, "map": m, "slice": s, "pointer to interface": &p, "through an interface field": viaAny}
}

// A write whose value does not encode leaves the key a miss, never the
// value it was meant to replace: Set and SetMany with a channel, a func or
// a value that refers to itself, and a GetOrSet loader whose result does
// not encode.
func TestUnencodableWriteLeavesMiss(t *testing.T) {
	bad := map[string]any{"channel": make(chan int), "func": func() {}}
	for name, v := range cyclic() {
		bad["cyclic "+name] = v
	}
	for store, open := range typedStores(t) {
		t.Run(store, func(t *testing.T) {
			c := open(t)
			ctx := context.Background()
			for what, v := range bad {
				require.NoError(t, echocache.Set(ctx, c, "k", any("old"), 0))
				err := echocache.Set(ctx, c, "k", v, 0)
				require.Error(t, err, "Set of a %s", what)
				_, err = echocache.Get[string](ctx, c, "k")
				assert.ErrorIs(t, err, echocache.ErrNotFound, "Set of a %s left the previous value", what)

				require.NoError(t, echocache.SetMany(ctx, c, map[string]any{"a": "old", "b": "old"}, 0))
				err = echocache.SetMany(ctx, c, map[string]any{"a": "new", "b": v}, 0)
				require.Error(t, err, "SetMany with a %s", what)
				for _, k := range []string{"a", "b"} {
					_, err = echocache.Get[string](ctx, c, k)
					assert.ErrorIs(t, err, echocache.ErrNotFound, "SetMany with a %s left the previous value of %s", what, k)
				}
			}

			// A loader's result is stored after the loader ran: a value
			// written meanwhile must not survive a fill that failed.
			got, err := echocache.GetOrSet(ctx, c, "g", 0, func(ctx context.Context) (any, error) {
				require.NoError(t, echocache.Set(ctx, c, "g", any("old"), 0))
				return make(chan int), nil
			})
			require.NoError(t, err, "GetOrSet fails open")
			assert.NotNil(t, got)
			_, err = echocache.Get[string](ctx, c, "g")
			assert.ErrorIs(t, err, echocache.ErrNotFound, "a fill that did not encode left the previous value")
		})
	}
}

// A value that refers to itself is refused with ErrValueTooDeep, never a
// crash (the encoders recurse without end on it), while a deep value
// within MaxValueDepth round-trips.
func TestCyclicValueIsRefused(t *testing.T) {
	c := newTestCache(t, openStore(t, "memory://"), echocache.Config{})
	ctx := context.Background()
	for name, v := range cyclic() {
		err := echocache.Set(ctx, c, "k", v, 0)
		assert.ErrorIs(t, err, echocache.ErrValueTooDeep, name)
		_, err = echocache.GetOrSet(ctx, c, "g-"+name, 0, func(context.Context) (any, error) { return v, nil }, echocache.Strict())
		assert.ErrorIs(t, err, echocache.ErrValueTooDeep, "GetOrSet of a cyclic %s", name)
	}
	for _, codec := range []echocache.Codec{echocache.JSONCodec{}, echocache.GobCodec{}} {
		cc := newTestCache(t, openStore(t, "memory://"), echocache.Config{Codec: codec})
		n := &node{Name: "a"}
		n.Next = n
		assert.ErrorIs(t, echocache.Set(ctx, cc, "k", n, 0), echocache.ErrValueTooDeep, "%T", codec)
	}

	// A list 900 nodes long nests 900 levels: stored and read back.
	var head *node
	for i := range 900 {
		head = &node{Name: string(rune('a' + i%26)), Next: head}
	}
	require.NoError(t, echocache.Set(ctx, c, "list", head, 0))
	back, err := echocache.Get[*node](ctx, c, "list")
	require.NoError(t, err)
	n := 0
	for p := back; p != nil; p = p.Next {
		n++
	}
	assert.Equal(t, 900, n)

	// One level too many is refused, not written for no reader.
	deep := any(nil)
	for range echocache.MaxValueDepth + 1 {
		deep = []any{deep}
	}
	assert.ErrorIs(t, echocache.Set(ctx, c, "deep", deep, 0), echocache.ErrValueTooDeep)
}

// A Memoize argument that refers to itself has no key: the call runs
// uncached (or fails with ErrUnkeyable when Strict), never crashes.
func TestCyclicMemoizeArgument(t *testing.T) {
	c := newTestCache(t, openStore(t, "memory://"), echocache.Config{})
	ctx := context.Background()
	calls := 0
	byNode := echocache.Memoize(c, "by-node", 0, func(_ context.Context, n *node) (string, error) {
		calls++
		return n.Name, nil
	})
	byAny := echocache.Memoize(c, "by-any", 0, func(_ context.Context, a any) (int, error) {
		calls++
		return 1, nil
	}, echocache.Strict())
	for name, v := range cyclic() {
		if n, ok := v.(*node); ok {
			got, err := byNode.Get(ctx, n)
			require.NoError(t, err, name)
			assert.Equal(t, n.Name, got)
		}
		_, err := byAny.Get(ctx, v)
		assert.True(t, errors.Is(err, echocache.ErrUnkeyable), "%s: %v", name, err)
	}
	assert.Equal(t, 2, calls, "the pointer arguments ran uncached; the Strict ones not at all")
}

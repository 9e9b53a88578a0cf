package echocache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// Reading a value with a Go type that cannot hold it is the caller's
// mistake: the read is a miss with a TypeMismatchError, and the entry
// stays for the readers of its own type. Before, every such read deleted
// the entry as corrupt.
func TestTypedMismatchKeepsEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()

		require.NoError(t, echocache.Set(ctx, c, "spam", "eggs", 0))
		require.NoError(t, echocache.Set(ctx, c, "n", 42, 0))
		require.NoError(t, echocache.Set(ctx, c, "b", []byte{0, 1}, 0))
		require.NoError(t, echocache.Set(ctx, c, "u", user{ID: 7, Name: "x"}, 0))
		require.NoError(t, echocache.Set(ctx, c, "big", 1000, 0))
		require.NoError(t, echocache.Set(ctx, c, "neg", -1, 0))

		reads := []struct {
			name string
			read func() error
		}{
			{"Get[int] of a string", func() error { _, err := echocache.Get[int](ctx, c, "spam"); return err }},
			{"Get[[]byte] of a string", func() error { _, err := echocache.Get[[]byte](ctx, c, "spam"); return err }},
			{"Get[user] of a string", func() error { _, err := echocache.Get[user](ctx, c, "spam"); return err }},
			{"Get[string] of an int", func() error { _, err := echocache.Get[string](ctx, c, "n"); return err }},
			{"Get[[]byte] of an int", func() error { _, err := echocache.Get[[]byte](ctx, c, "n"); return err }},
			{"Get[user] of an int", func() error { _, err := echocache.Get[user](ctx, c, "n"); return err }},
			{"Get[string] of a []byte", func() error { _, err := echocache.Get[string](ctx, c, "b"); return err }},
			{"Get[int] of a struct", func() error { _, err := echocache.Get[int](ctx, c, "u"); return err }},
			{"Get[string] of a struct", func() error { _, err := echocache.Get[string](ctx, c, "u"); return err }},
			{"Get[int8] of 1000", func() error { _, err := echocache.Get[int8](ctx, c, "big"); return err }},
			{"Get[uint] of -1", func() error { _, err := echocache.Get[uint](ctx, c, "neg"); return err }},
		}
		for _, r := range reads {
			err := r.read()
			require.ErrorIs(t, err, echocache.ErrNotFound, "%s: a miss when fail-open", r.name)
			require.ErrorIs(t, err, echocache.ErrTypeMismatch, "%s", r.name)
			var mm *echocache.TypeMismatchError
			require.ErrorAs(t, err, &mm, "%s", r.name)
			assert.NotEmpty(t, mm.Want, "%s", r.name)
		}
		// Every entry is still there for its own type.
		str, err := echocache.Get[string](ctx, c, "spam")
		require.NoError(t, err, "the string entry was destroyed by a mismatched read")
		assert.Equal(t, "eggs", str)
		n, err := echocache.Get[int](ctx, c, "n")
		require.NoError(t, err, "the int entry was destroyed by a mismatched read")
		assert.Equal(t, 42, n)
		bs, err := echocache.Get[[]byte](ctx, c, "b")
		require.NoError(t, err, "the []byte entry was destroyed by a mismatched read")
		assert.Equal(t, []byte{0, 1}, bs)
		u, err := echocache.Get[user](ctx, c, "u")
		require.NoError(t, err, "the struct entry was destroyed by a mismatched read")
		assert.Equal(t, int64(7), u.ID)
		big, err := echocache.Get[int16](ctx, c, "big")
		require.NoError(t, err)
		assert.Equal(t, int16(1000), big)

		// Strict returns the mismatch alone: it is no miss.
		_, err = echocache.Get[int](ctx, c, "spam", echocache.Strict())
		require.ErrorIs(t, err, echocache.ErrTypeMismatch)
		assert.NotErrorIs(t, err, echocache.ErrNotFound, "a Strict mismatch is not a miss")

		// GetMany leaves the key out and keeps it; Strict reports it.
		many, err := echocache.GetMany[int](ctx, c, []string{"spam", "n", "missing"})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"n": 42}, many)
		many, err = echocache.GetMany[int](ctx, c, []string{"spam", "n"}, echocache.Strict())
		require.ErrorIs(t, err, echocache.ErrTypeMismatch)
		assert.Equal(t, map[string]int{"n": 42}, many)

		// GetOrSet runs the loader and does not store over the entry.
		var cnt counter
		loader := func(context.Context) (int, error) { cnt.n.Add(1); return 5, nil }
		v, err := echocache.GetOrSet(ctx, c, "spam", time.Hour, loader)
		require.NoError(t, err)
		assert.Equal(t, 5, v)
		_, err = echocache.GetOrSet(ctx, c, "spam", time.Hour, loader, echocache.Strict())
		require.ErrorIs(t, err, echocache.ErrTypeMismatch)
		assert.Equal(t, int64(1), cnt.calls(), "a Strict GetOrSet called the loader over a mismatch")

		// A Function of another type under the key.
		f := echocache.Function(c, "spam", time.Hour, func(context.Context) (int, error) { return 9, nil })
		fv, err := f.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, 9, fv)

		// Incr of a string is refused and keeps it.
		_, err = c.Incr(ctx, "spam", 1)
		require.ErrorIs(t, err, stores.ErrNotInteger)

		str, err = echocache.Get[string](ctx, c, "spam")
		require.NoError(t, err, "GetOrSet, Function or Incr of another type replaced or removed the entry")
		assert.Equal(t, "eggs", str)
	})
}

// Two versions of one program share a store and memoize one name with
// different result types (a deploy that changed the function): each reads
// its own entries or runs its function, and neither destroys the other's.
func TestMemoizeMismatchAcrossProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s1, s2 := b.open(t)
		c1 := newTestCache(t, s1, echocache.Config{})
		c2 := newTestCache(t, s2, echocache.Config{})
		ctx := context.Background()
		var n1, n2 counter
		old := echocache.Memoize(c1, "price", time.Hour, func(_ context.Context, id int) (int, error) {
			n1.n.Add(1)
			return id * 100, nil
		})
		neu := echocache.Memoize(c2, "price", time.Hour, func(_ context.Context, id int) (string, error) {
			n2.n.Add(1)
			return "EUR 1.00", nil
		})
		v, err := old.Get(ctx, 3)
		require.NoError(t, err)
		assert.Equal(t, 300, v)
		sv, err := neu.Get(ctx, 3)
		require.NoError(t, err)
		assert.Equal(t, "EUR 1.00", sv)
		_, err = neu.Get(ctx, 3)
		require.NoError(t, err)
		v, err = old.Get(ctx, 3)
		require.NoError(t, err)
		assert.Equal(t, 300, v)
		assert.Equal(t, int64(1), n1.calls(), "the old program's entry was destroyed by the new program's reads")
		assert.Equal(t, int64(2), n2.calls(), "the new program does not store over the old entry")
	})
}

// Get[any] returns what was stored, as the documented Go types.
func TestGetAny(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()
		require.NoError(t, echocache.Set(ctx, c, "s", "eggs", 0))
		require.NoError(t, echocache.Set(ctx, c, "b", []byte("raw"), 0))
		require.NoError(t, echocache.Set(ctx, c, "i", 42, 0))
		require.NoError(t, echocache.Set(ctx, c, "u8", uint8(7), 0))
		require.NoError(t, echocache.Set(ctx, c, "m", map[string]int{"a": 1}, 0))
		require.NoError(t, echocache.Set(ctx, c, "z", "", 0))
		_, err := c.Incr(ctx, "ctr", -3)
		require.NoError(t, err)
		for key, want := range map[string]any{
			"s":   "eggs",
			"b":   []byte("raw"),
			"i":   int64(42),
			"u8":  int64(7),
			"m":   map[any]any{"a": uint64(1)},
			"z":   nil,
			"ctr": int64(-3),
		} {
			got, err := echocache.Get[any](ctx, c, key)
			require.NoError(t, err, "Get[any](%q)", key)
			assert.Equal(t, want, got, "Get[any](%q)", key)
			// and the entry is still there for its own type
			ok, err := c.Has(ctx, key)
			require.NoError(t, err)
			assert.True(t, ok, "Get[any](%q) removed the entry", key)
		}
		// The typed read after Get[any] still works.
		str, err := echocache.Get[string](ctx, c, "s")
		require.NoError(t, err)
		assert.Equal(t, "eggs", str)
	})
}

// Cache.Incr keeps the entry's expiry whatever the signs of the value and
// of the delta: Set(hits, 10, ttl), Incr(hits, -1) expires with ttl.
func TestIncrKeepsTTL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()
		ttl := b.minTTL
		starts := map[string]int64{"hits": 10, "neg": -5, "cross": 1}
		for key, start := range starts {
			require.NoError(t, echocache.Set(ctx, c, key, start, ttl))
			_, err := c.Incr(ctx, key, -2)
			require.NoError(t, err)
		}
		require.NoError(t, echocache.Set(ctx, c, "up-neg", int64(-5), ttl))
		_, err := c.Incr(ctx, "up-neg", 1)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			for _, key := range []string{"hits", "neg", "cross", "up-neg"} {
				if _, err := echocache.Get[int64](ctx, c, key); !errors.Is(err, echocache.ErrNotFound) {
					return false
				}
			}
			return true
		}, ttl+5*time.Second, 20*time.Millisecond, "counters changed by Incr outlived their %v TTL", ttl)
	})
}

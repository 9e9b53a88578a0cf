package echocache_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

//go:noinline
func trivial(_ context.Context, n int) (string, error) { return strconv.Itoa(n), nil }

// BenchmarkMemoize compares a memoized hit on the memory store with calling
// a trivial function directly: the cost the cache adds to every hit.
func BenchmarkMemoize(b *testing.B) {
	ctx := context.Background()
	store, err := stores.Open(ctx, "memory://")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	// Each run gets its own Cache: names are unique per Cache, and -count
	// runs a sub-benchmark more than once.
	newCache := func() *echocache.Cache { return echocache.New(store) }

	b.Run("direct-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := trivial(ctx, 12345); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memoized-hit/memory", func(b *testing.B) {
		c := newCache()
		m := echocache.Memoize(c, "bench-memo", time.Hour, trivial)
		if _, err := m.Get(ctx, 12345); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := m.Get(ctx, 12345); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memoized-hit-struct/memory", func(b *testing.B) {
		type arg struct {
			Section string
			Page    int
		}
		c := newCache()
		m := echocache.Memoize(c, "bench-memo-struct", time.Hour, func(ctx context.Context, a arg) (benchSmall, error) {
			return newBenchSmall(), nil
		})
		if _, err := m.Get(ctx, arg{"news", 2}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := m.Get(ctx, arg{"news", 2}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("function-hit/memory", func(b *testing.B) {
		c := newCache()
		f := echocache.Function(c, "bench-func", time.Hour, func(ctx context.Context) (string, error) { return trivial(ctx, 12345) })
		if _, err := f.Get(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := f.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-hit/memory", func(b *testing.B) {
		c := newCache()
		if err := echocache.Set(ctx, c, "bench-get", "12345", time.Hour); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := echocache.Get[string](ctx, c, "bench-get"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

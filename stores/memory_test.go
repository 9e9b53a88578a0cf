package stores_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

func newMemory(t testing.TB, cfg stores.MemoryConfig) *stores.Memory {
	t.Helper()
	m, err := stores.NewMemory(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Store {
		return newMemory(t, stores.MemoryConfig{Prefix: storetest.Namespace(t)})
	}, storetest.Options{
		NoSizeLimit: "the default 64 MiB limit; refused writes run in TestMemoryConformanceMaxBytes",
		ShortTTL:    150 * time.Millisecond,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
			return newMemory(t, stores.MemoryConfig{DefaultTTL: def})
		},
	})
}

// TestMemoryConformanceMaxBytes runs the suite on a memory store bounded
// as memory://?max_bytes=1MiB, whose largest value is 1 MiB less the
// per-entry overhead: the suite's refused writes must leave misses.
func TestMemoryConformanceMaxBytes(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Store {
		s, err := stores.Open(t.Context(), "memory://?max_bytes=1MiB")
		require.NoError(t, err)
		return s
	}, storetest.Options{
		MaxValueSize: 1<<20 - 128,
		ShortTTL:     150 * time.Millisecond,
	})
}

func BenchmarkMemoryGet(b *testing.B) {
	ctx := context.Background()
	s := newMemory(b, stores.MemoryConfig{})
	value := []byte(strings.Repeat("v", 512))
	require.NoError(b, s.Set(ctx, "k", value, time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemorySet(b *testing.B) {
	ctx := context.Background()
	s := newMemory(b, stores.MemoryConfig{})
	value := []byte(strings.Repeat("v", 512))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", value, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryGetParallel(b *testing.B) {
	ctx := context.Background()
	s := newMemory(b, stores.MemoryConfig{})
	value := []byte(strings.Repeat("v", 512))
	for i := range 1024 {
		require.NoError(b, s.Set(ctx, "k"+strconv.Itoa(i), value, time.Minute))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, "k"+strconv.Itoa(i&1023)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func ExampleNewMemory() {
	ctx := context.Background()
	store, err := stores.NewMemory(stores.MemoryConfig{
		MaxBytes:   16 << 20, // 16 MiB of keys, values and overhead
		MaxEntries: 10000,    // and at most 10000 entries
		DefaultTTL: 5 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	_ = store.Set(ctx, "greeting", []byte("hello"), stores.DefaultTTL) // 5 minutes
	v, _ := store.Get(ctx, "greeting")
	fmt.Println(string(v))

	n, _ := store.Incr(ctx, "visits", 1)
	fmt.Println(n)

	_, err = store.Get(ctx, "absent")
	fmt.Println(errors.Is(err, stores.ErrNotFound))
	// Output:
	// hello
	// 1
	// true
}

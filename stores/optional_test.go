package stores_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// essential is a store with Store's methods and an atomic Incr, and none of
// the batch calls: the conformance suite reaches GetMany, SetMany and
// DeleteMany through the fallback loops of stores.GetMany and the others.
type essential struct{ m *stores.Memory }

func (s essential) Get(ctx context.Context, key string) ([]byte, error) { return s.m.Get(ctx, key) }
func (s essential) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	return s.m.Set(ctx, key, v, ttl)
}
func (s essential) Add(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	return s.m.Add(ctx, key, v, ttl)
}
func (s essential) Delete(ctx context.Context, key string) error { return s.m.Delete(ctx, key) }
func (s essential) Clear(ctx context.Context) error              { return s.m.Clear(ctx) }
func (s essential) Close() error                                 { return s.m.Close() }
func (s essential) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	return s.m.Incr(ctx, key, delta)
}

func TestFallbacksConformance(t *testing.T) {
	var _ stores.Incrementer = essential{}
	if _, ok := any(essential{}).(stores.MultiGetter); ok {
		t.Fatal("essential has GetMany; the test would not reach the fallback")
	}
	// MaxBytes 1 MiB, so that a refused write goes through the SetMany
	// fallback too (see TestMemoryConformanceMaxBytes for the limit).
	storetest.Run(t, func(t *testing.T) stores.Store {
		return essential{newMemory(t, stores.MemoryConfig{Prefix: storetest.Namespace(t), MaxBytes: 1 << 20})}
	}, storetest.Options{
		MaxValueSize: 1<<20 - 128,
		ShortTTL:     150 * time.Millisecond,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
			return essential{newMemory(t, stores.MemoryConfig{DefaultTTL: def, MaxBytes: 1 << 20})}
		},
	})
}

// bare has no Incr: stores.Incr refuses rather than emulate it.
type bare struct{ essential }

func (bare) Incr() {} // hides essential's Incr

func TestIncrUnsupported(t *testing.T) {
	s := bare{essential{newMemory(t, stores.MemoryConfig{})}}
	_, err := stores.Incr(t.Context(), s, "n", 1)
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("stores.Incr on a store without Incr = %v; want errors.ErrUnsupported", err)
	}
}

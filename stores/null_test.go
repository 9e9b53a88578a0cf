package stores_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/stores"
)

func TestNull(t *testing.T) {
	ctx := context.Background()
	s := stores.NewNull()

	require.NoError(t, s.Set(ctx, "k", []byte("v"), stores.NoExpiry))
	_, err := s.Get(ctx, "k")
	assert.ErrorIs(t, err, stores.ErrNotFound, "Get after Set")

	for range 2 {
		ok, err := s.Add(ctx, "k", []byte("v"), stores.DefaultTTL)
		require.NoError(t, err)
		assert.True(t, ok, "Add must report true so that Add-based locks never wait")
	}
	for range 2 {
		n, err := stores.Incr(ctx, s, "n", 5)
		require.NoError(t, err)
		assert.Equal(t, int64(5), n, "Incr returns delta, as on an absent key")
	}

	require.NoError(t, stores.SetMany(ctx, s, map[string][]byte{"a": []byte("1")}, stores.DefaultTTL))
	got, err := stores.GetMany(ctx, s, []string{"a", "b"})
	require.NoError(t, err)
	assert.NotNil(t, got)
	assert.Empty(t, got)
	require.NoError(t, s.Delete(ctx, "a"))
	require.NoError(t, stores.DeleteMany(ctx, s, []string{"a", "b"}))
	require.NoError(t, s.Clear(ctx))

	_, local := inproc.Lookup(s)
	assert.True(t, local, "Null lives in the process")
	assert.NoError(t, stores.Ping(ctx, s))
}

// nullOps calls every operation of s and returns their errors by name.
func nullOps(ctx context.Context, s stores.Store) map[string]error {
	errs := map[string]error{}
	_, errs["Get"] = s.Get(ctx, "k")
	errs["Set"] = s.Set(ctx, "k", nil, stores.DefaultTTL)
	_, errs["Add"] = s.Add(ctx, "k", nil, stores.DefaultTTL)
	errs["Delete"] = s.Delete(ctx, "k")
	_, errs["GetMany"] = stores.GetMany(ctx, s, []string{"k"})
	errs["SetMany"] = stores.SetMany(ctx, s, map[string][]byte{"k": nil}, stores.DefaultTTL)
	errs["DeleteMany"] = stores.DeleteMany(ctx, s, []string{"k"})
	_, errs["Incr"] = stores.Incr(ctx, s, "k", 1)
	errs["Clear"] = s.Clear(ctx)
	return errs
}

func TestNullCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for op, err := range nullOps(ctx, stores.NewNull()) {
		assert.ErrorIs(t, err, context.Canceled, op)
	}
}

func TestNullClosed(t *testing.T) {
	s := stores.NewNull()
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "second Close")
	for op, err := range nullOps(context.Background(), s) {
		assert.ErrorIs(t, err, stores.ErrClosed, op)
	}
}

func BenchmarkNullGet(b *testing.B) {
	ctx := context.Background()
	s := stores.NewNull()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "k"); err != stores.ErrNotFound {
			b.Fatal(err)
		}
	}
}

func BenchmarkNullSet(b *testing.B) {
	ctx := context.Background()
	s := stores.NewNull()
	value := []byte("v")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", value, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleOpen_null() {
	// null:// turns caching off without changing code: nothing is kept.
	store, err := stores.Open(context.Background(), "null://")
	if err != nil {
		panic(err)
	}
	_ = store.Set(context.Background(), "k", []byte("v"), stores.NoExpiry)
	_, err = store.Get(context.Background(), "k")
	fmt.Println(errors.Is(err, stores.ErrNotFound))
	// Output: true
}

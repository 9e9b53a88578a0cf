package stores_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

func newFile(t testing.TB, cfg stores.FileConfig) *stores.File {
	t.Helper()
	f, err := stores.NewFile(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestFileConformance(t *testing.T) {
	// Every store shares one directory, each under its own prefix, as
	// several apps sharing a cache directory would.
	dir := t.TempDir()
	neighbour := newFile(t, stores.FileConfig{Dir: dir, Prefix: "neighbour:"})
	storetest.Run(t, func(t *testing.T) stores.Store {
		return newFile(t, stores.FileConfig{Dir: dir, Prefix: storetest.Namespace(t), MaxEntries: 10000})
	}, storetest.Options{
		NoSizeLimit: "the file store has no value size limit",
		ShortTTL:    200 * time.Millisecond,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
			return newFile(t, stores.FileConfig{Dir: dir, Prefix: storetest.Namespace(t), DefaultTTL: def})
		},
		Plant: func(t *testing.T, key string) {
			require.NoError(t, neighbour.Set(t.Context(), key, []byte("planted"), stores.NoExpiry))
		},
		PlantedExists: func(t *testing.T, key string) bool {
			_, err := neighbour.Get(t.Context(), key)
			return err == nil
		},
	})
}

func BenchmarkFileGet(b *testing.B) {
	ctx := context.Background()
	s := newFile(b, stores.FileConfig{Dir: b.TempDir()})
	value := []byte(strings.Repeat("v", 512))
	require.NoError(b, s.Set(ctx, "k", value, time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFileSet(b *testing.B) {
	ctx := context.Background()
	s := newFile(b, stores.FileConfig{Dir: b.TempDir()})
	value := []byte(strings.Repeat("v", 512))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", value, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleNewFile() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "echocache-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// Two apps share one directory, each in its own namespace.
	app, err := stores.NewFile(stores.FileConfig{Dir: dir, Prefix: "app:", MaxEntries: 500})
	if err != nil {
		panic(err)
	}
	other, err := stores.NewFile(stores.FileConfig{Dir: dir, Prefix: "other:"})
	if err != nil {
		panic(err)
	}
	_ = app.Set(ctx, "page", []byte("<h1>cached</h1>"), time.Minute)
	_ = other.Set(ctx, "page", []byte("other app"), time.Minute)

	_ = app.Clear(ctx) // clears "app:" only
	_, err = app.Get(ctx, "page")
	fmt.Println(errors.Is(err, stores.ErrNotFound))
	v, _ := other.Get(ctx, "page")
	fmt.Println(string(v))
	// Output:
	// true
	// other app
}

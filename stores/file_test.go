package stores_test

import (
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
		ShortTTL: 200 * time.Millisecond,
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

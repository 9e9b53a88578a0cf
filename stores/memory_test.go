package stores_test

import (
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
		ShortTTL: 150 * time.Millisecond,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
			return newMemory(t, stores.MemoryConfig{DefaultTTL: def})
		},
	})
}

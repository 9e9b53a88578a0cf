package stores

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// residents counts the entries of m that are present after the cache has
// finished its pending evictions, and their size as the weigher counts it.
func residents(t *testing.T, m *Memory) (n int, size int64) {
	t.Helper()
	m.cache.CleanUp()
	for k, e := range m.cache.All() {
		n++
		size += entrySize(k, e.val)
	}
	return n, size
}

func TestMemoryBounds(t *testing.T) {
	tests := []struct {
		name       string
		cfg        MemoryConfig
		valueSize  int
		writes     int
		minEntries int // the cache must not evict far below its bound
	}{
		{"ok, entry count binds", MemoryConfig{MaxBytes: 64 << 20, MaxEntries: 100}, 10, 1000, 50},
		{"ok, bytes bind", MemoryConfig{MaxBytes: 1 << 20}, 10 << 10, 500, 50},
		{"ok, bytes bind before count", MemoryConfig{MaxBytes: 64 << 10, MaxEntries: 10000}, 100, 5000, 150},
		{"ok, count binds before bytes", MemoryConfig{MaxBytes: 1 << 20, MaxEntries: 30}, 1000, 500, 15},
		{"ok, count does not divide bytes", MemoryConfig{MaxBytes: 100_000, MaxEntries: 7}, 10, 100, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMemory(tt.cfg)
			require.NoError(t, err)
			defer m.Close()
			ctx := context.Background()
			val := make([]byte, tt.valueSize)
			for i := range tt.writes {
				require.NoError(t, m.Set(ctx, fmt.Sprintf("key-%05d", i), val, NoExpiry))
			}
			n, size := residents(t, m)
			assert.LessOrEqual(t, size, tt.cfg.MaxBytes, "bytes held")
			if tt.cfg.MaxEntries > 0 {
				assert.LessOrEqual(t, n, tt.cfg.MaxEntries, "entries held")
			}
			assert.GreaterOrEqual(t, n, tt.minEntries, "the cache evicted far more than its bounds ask")
		})
	}
}

func TestMemoryTooLarge(t *testing.T) {
	m, err := NewMemory(MemoryConfig{MaxBytes: 4096})
	require.NoError(t, err)
	defer m.Close()
	ctx := context.Background()

	require.NoError(t, m.Set(ctx, "fits", make([]byte, 4096-entryOverhead-len("fits")), NoExpiry))
	tooBig := make([]byte, 4096-entryOverhead-len("big")+1)
	assert.ErrorIs(t, m.Set(ctx, "big", tooBig, NoExpiry), ErrTooLarge)
	_, err = m.Add(ctx, "big", tooBig, NoExpiry)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorIs(t, m.SetMany(ctx, map[string][]byte{"small": nil, "big": tooBig}, NoExpiry), ErrTooLarge)
	_, err = m.Get(ctx, "small")
	assert.ErrorIs(t, err, ErrNotFound, "SetMany stored part of a batch it refused")
}

// TestMemoryHotEntriesSurviveScan shows the W-TinyLFU admission: a burst of
// keys read once does not push out keys read often, as it would in an LRU.
func TestMemoryHotEntriesSurviveScan(t *testing.T) {
	m, err := NewMemory(MemoryConfig{MaxEntries: 100})
	require.NoError(t, err)
	defer m.Close()
	ctx := context.Background()
	for i := range 40 {
		require.NoError(t, m.Set(ctx, fmt.Sprintf("hot-%d", i), []byte("v"), NoExpiry))
	}
	// The frequency sketch starts counting once the cache is half full.
	for i := range 20 {
		require.NoError(t, m.Set(ctx, fmt.Sprintf("warm-%d", i), []byte("v"), NoExpiry))
	}
	m.cache.CleanUp()
	// The policy sees one read in readSample: 100 reads show each hot key
	// to it about 100/readSample times, and never to it with a chance of
	// (1-1/readSample)^100, under 2e-6.
	for range 100 {
		for i := range 40 {
			_, err := m.Get(ctx, fmt.Sprintf("hot-%d", i))
			require.NoError(t, err)
			m.cache.CleanUp() // the read buffers are lossy; drain each read
		}
	}
	for i := range 2000 {
		require.NoError(t, m.Set(ctx, fmt.Sprintf("cold-%d", i), []byte("v"), NoExpiry))
	}
	m.cache.CleanUp()
	survivors := 0
	for i := range 40 {
		if _, err := m.Get(ctx, fmt.Sprintf("hot-%d", i)); err == nil {
			survivors++
		}
	}
	assert.GreaterOrEqual(t, survivors, 36, "hot entries evicted by a scan of cold ones")
}

func TestMemoryGetAllocatesOnce(t *testing.T) {
	m, err := NewMemory(MemoryConfig{})
	require.NoError(t, err)
	defer m.Close()
	ctx := context.Background()
	require.NoError(t, m.Set(ctx, "k", make([]byte, 512), NoExpiry))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := m.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, allocs, 1.0, "allocations per Get hit")
	allocs = testing.AllocsPerRun(200, func() {
		if _, err := m.Get(ctx, "absent"); err != ErrNotFound {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per Get miss")
}

func TestNewMemoryRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  MemoryConfig
		want string
	}{
		{"nok, negative MaxBytes", MemoryConfig{MaxBytes: -1}, "MaxBytes -1"},
		{"nok, negative MaxEntries", MemoryConfig{MaxEntries: -5}, "MaxEntries -5"},
		{"nok, MaxBytes below one entry", MemoryConfig{MaxBytes: 10}, "MaxBytes 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMemory(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

package stores

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
)

func TestParseMetaGetHeader(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		size  int
		ttl   int64
		cas   uint64
		found bool
		err   string
	}{
		{"ok, hit", "VA 2 t59 c123\r\n", 2, 59, 123, true, ""},
		{"ok, flags in another order", "VA 0 c7 t-1\r\n", 0, -1, 7, true, ""},
		{"ok, other flags ignored", "VA 5 f0 t1 c9 k\r\n", 5, 1, 9, true, ""},
		{"ok, miss", "EN\r\n", 0, 0, 0, false, ""},
		{"nok, old server", "ERROR\r\n", 0, 0, 0, false, "memcached 1.6"},
		{"nok, client error", "CLIENT_ERROR bad command line format\r\n", 0, 0, 0, false, "CLIENT_ERROR"},
		{"nok, server error", "SERVER_ERROR out of memory\r\n", 0, 0, 0, false, "SERVER_ERROR"},
		{"nok, no TTL", "VA 2 c1\r\n", 0, 0, 0, false, "lacks"},
		{"nok, no CAS", "VA 2 t1\r\n", 0, 0, 0, false, "lacks"},
		{"nok, negative size", "VA -2 t1 c1\r\n", 0, 0, 0, false, "size"},
		{"nok, huge size", "VA 99999999999 t1 c1\r\n", 0, 0, 0, false, "size"},
		{"nok, bad TTL", "VA 2 tx c1\r\n", 0, 0, 0, false, "TTL"},
		{"nok, TTL below -1", "VA 2 t-5 c1\r\n", 0, 0, 0, false, "TTL"},
		{"nok, bad CAS", "VA 2 t1 c-1\r\n", 0, 0, 0, false, "CAS"},
		{"nok, garbage", "HD\r\n", 0, 0, 0, false, "unexpected"},
		{"nok, empty", "\r\n", 0, 0, 0, false, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, it, found, err := parseMetaGetHeader(tt.line)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.found, found)
			assert.Equal(t, tt.size, size)
			assert.Equal(t, tt.ttl, it.ttl)
			assert.Equal(t, tt.cas, it.cas)
		})
	}
}

func FuzzParseMetaGetHeader(f *testing.F) {
	for _, s := range []string{"VA 2 t59 c123\r\n", "EN\r\n", "ERROR\r\n", "VA 0 c7 t-1", "VA 1 t c", "VA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		size, it, found, err := parseMetaGetHeader(line)
		if err != nil {
			return
		}
		if found && (size < 0 || size > 1<<30 || it.ttl < -1) {
			t.Fatalf("parseMetaGetHeader(%q) = %d, %+v: out of range", line, size, it)
		}
	})
}

func TestKeepExpiration(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		ttl  int64
		want int32
	}{
		{-1, 0},  // no expiry
		{0, 1},   // about to expire: never 0, which would mean never
		{59, 59}, // relative seconds
		{memcachedRelativeLimit, memcachedRelativeLimit},
		{memcachedRelativeLimit + 1, int32(now.Unix() + memcachedRelativeLimit + 1)}, // absolute
		{1 << 40, 0}, // past 2038: never
	}
	for _, tt := range tests {
		if got := keepExpiration(tt.ttl, now); got != tt.want {
			t.Errorf("keepExpiration(%d) = %d; want %d", tt.ttl, got, tt.want)
		}
	}
}

// TestMemcachedIncrCarriesTTL checks that a compare-and-swap Incr writes
// the counter back with the TTL it had left, not a fresh one and not none:
// the server's own view of the item, read with a meta get, says so.
func TestMemcachedIncrCarriesTTL(t *testing.T) {
	ctx := t.Context()
	m, err := NewMemcached(MemcachedConfig{Servers: []string{servertest.Memcached(t)}, Prefix: "incrttl" + strings.ReplaceAll(t.Name(), "/", "") + ":"})
	require.NoError(t, err)
	defer m.Close()
	for _, tt := range []struct {
		start string
		delta int64
	}{{"10", -11}, {"-5", 1}, {"-5", -1}, {"3", -1}} {
		require.NoError(t, m.Set(ctx, "hits", []byte(tt.start), time.Hour))
		_, err := m.Incr(ctx, "hits", tt.delta)
		require.NoError(t, err)
		gen, err := m.cachedGen(ctx)
		require.NoError(t, err)
		it, found, err := m.metaGet(m.dataKey(gen, "hits"))
		require.NoError(t, err)
		require.True(t, found)
		assert.InDelta(t, 3600, it.ttl, 5, "TTL left after Incr(%s, %d)", tt.start, tt.delta)
	}
	// A counter without expiry keeps none.
	require.NoError(t, m.Set(ctx, "forever", []byte("1"), NoExpiry))
	_, err = m.Incr(ctx, "forever", -2)
	require.NoError(t, err)
	gen, err := m.cachedGen(ctx)
	require.NoError(t, err)
	it, _, err := m.metaGet(m.dataKey(gen, "forever"))
	require.NoError(t, err)
	assert.Equal(t, int64(-1), it.ttl, "Incr gave an expiry to a counter without one")
}

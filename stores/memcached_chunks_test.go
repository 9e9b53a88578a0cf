package stores_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// pattern returns n bytes that differ from any other call's with another
// seed, so that chunks of two values never look alike.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31+i>>11) ^ seed
	}
	return b
}

// chunkKeys returns the keys of the chunks a store with prefix wrote on
// addr.
func chunkKeys(t *testing.T, addr, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range servertest.MemcachedKeys(t, addr) {
		if strings.HasPrefix(k, prefix) && strings.Contains(k, ":#c") {
			out = append(out, k)
		}
	}
	return out
}

// TestMemcachedChunkedValues stores values of one item and of several,
// through every call that writes, on both protocols, and reads them back
// whole: exactly at the item's size, one byte over, 1 MiB, 4 MiB.
func TestMemcachedChunkedValues(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			s := newMemcached(t, stores.MemcachedConfig{Servers: servertest.MemcachedPool(t), Protocol: protocol, Timeout: 5 * time.Second})
			item := stores.DefaultMemcachedMaxItemSize - 512
			sizes := []int{item, item + 1, 1 << 20, 4 << 20, 2*item + 1}
			for i, n := range sizes {
				key := fmt.Sprint("set", n)
				v := pattern(byte(i), n)
				require.NoError(t, s.Set(ctx, key, v, time.Minute), "Set of %d bytes", n)
				got, err := s.Get(ctx, key)
				require.NoError(t, err, "Get of %d bytes", n)
				require.True(t, bytes.Equal(v, got), "Get of %d bytes returned %d other bytes", n, len(got))

				ok, err := s.Add(ctx, "add"+key, v, time.Minute)
				require.NoError(t, err)
				require.True(t, ok, "Add of %d bytes", n)
				ok, err = s.Add(ctx, "add"+key, pattern(99, n), time.Minute)
				require.NoError(t, err)
				require.False(t, ok, "Add of a present key of %d bytes", n)
				got, err = s.Get(ctx, "add"+key)
				require.NoError(t, err)
				require.True(t, bytes.Equal(v, got), "Add of a present key changed it")
			}
			many := map[string][]byte{}
			for i, n := range sizes {
				many[fmt.Sprint("many", n)] = pattern(byte(i+10), n)
			}
			many["small"] = []byte("small")
			require.NoError(t, s.SetMany(ctx, many, time.Minute))
			keys := make([]string, 0, len(many))
			for k := range many {
				keys = append(keys, k)
			}
			got, err := s.GetMany(ctx, keys)
			require.NoError(t, err)
			require.Len(t, got, len(many))
			for k, v := range many {
				require.True(t, bytes.Equal(v, got[k]), "GetMany[%q]", k)
			}
			require.NoError(t, s.DeleteMany(ctx, keys))
			got, err = s.GetMany(ctx, keys)
			require.NoError(t, err)
			assert.Empty(t, got)
			_, err = s.Incr(ctx, "set"+fmt.Sprint(4<<20), 1)
			require.ErrorIs(t, err, stores.ErrNotInteger, "Incr of a chunked value")
		})
	}
}

// TestMemcachedChunkMissing deletes one chunk of a value directly on the
// server: the value reads as a miss, never as its other chunks joined.
func TestMemcachedChunkMissing(t *testing.T) {
	ctx := t.Context()
	srv := servertest.StartMemcached(t)
	prefix := memcachedPrefix(t)
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{srv.Addr()}, Prefix: prefix})
	raw := rawMemcached(t, srv.Addr())
	for _, which := range []string{"first", "middle", "last"} {
		t.Run(which, func(t *testing.T) {
			key := "big-" + which
			require.NoError(t, s.Set(ctx, key, pattern(1, 3<<20+5), 0))
			chunks := chunkKeys(t, srv.Addr(), prefix)
			require.Len(t, chunks, 4, "3 MiB and 5 bytes in chunks of 1 MiB less 512 bytes")
			slices := map[string]string{}
			for _, k := range chunks {
				slices[k[strings.LastIndexByte(k, ':')+1:]] = k
			}
			victim := map[string]string{"first": slices["0"], "middle": slices["2"], "last": slices["3"]}[which]
			require.NoError(t, raw.Delete(victim))
			_, err := s.Get(ctx, key)
			require.ErrorIs(t, err, stores.ErrNotFound, "a value with its %s chunk deleted", which)
			got, err := s.GetMany(ctx, []string{key})
			require.NoError(t, err)
			assert.Empty(t, got)
			for _, k := range chunks {
				_ = raw.Delete(k)
			}
		})
	}
}

// TestMemcachedChunkCorrupt overwrites one chunk directly on the server
// with other bytes of the same length, or a shorter slice: the checksum
// or the length check makes the value a miss. A manifest written by hand
// that is not one is a miss too.
func TestMemcachedChunkCorrupt(t *testing.T) {
	ctx := t.Context()
	srv := servertest.StartMemcached(t)
	prefix := memcachedPrefix(t)
	var logged atomic.Int64
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{srv.Addr()}, Prefix: prefix, Logger: echoLikeLogger(func(string, ...any) { logged.Add(1) })})
	raw := rawMemcached(t, srv.Addr())

	require.NoError(t, s.Set(ctx, "big", pattern(2, 2<<20), 0))
	chunks := chunkKeys(t, srv.Addr(), prefix)
	require.Len(t, chunks, 3)
	it, err := raw.Get(chunks[1])
	require.NoError(t, err)
	forged := bytes.Clone(it.Value)
	forged[100] ^= 1
	require.NoError(t, raw.Set(&memcache.Item{Key: chunks[1], Value: forged, Flags: it.Flags}))
	_, err = s.Get(ctx, "big")
	require.ErrorIs(t, err, stores.ErrNotFound, "a chunk with one bit flipped")
	assert.Positive(t, logged.Load(), "a checksum mismatch is logged")

	require.NoError(t, raw.Set(&memcache.Item{Key: chunks[1], Value: it.Value[:len(it.Value)-1], Flags: it.Flags}))
	_, err = s.Get(ctx, "big")
	require.ErrorIs(t, err, stores.ErrNotFound, "a chunk one byte short")

	// The entry's own item, flagged as a manifest, with other contents.
	require.NoError(t, s.Set(ctx, "small", []byte("v"), 0))
	var entry string
	for _, k := range servertest.MemcachedKeys(t, srv.Addr()) {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, ":small") {
			entry = k
		}
	}
	require.NotEmpty(t, entry)
	for _, body := range [][]byte{[]byte("v"), make([]byte, 42), bytes.Repeat([]byte{0xff}, 42)} {
		require.NoError(t, raw.Set(&memcache.Item{Key: entry, Value: body, Flags: 1 << 31}))
		_, err = s.Get(ctx, "small")
		require.ErrorIs(t, err, stores.ErrNotFound, "a forged manifest %q", body)
	}
	// A plain value planted without the manifest flag is read as it is.
	require.NoError(t, raw.Set(&memcache.Item{Key: entry, Value: []byte("planted")}))
	v, err := s.Get(ctx, "small")
	require.NoError(t, err)
	assert.Equal(t, "planted", string(v))
}

type echoLikeLogger func(format string, args ...any)

func (f echoLikeLogger) Warnf(format string, args ...any) { f(format, args...) }

// TestMemcachedChunkedOverwrite replaces a chunked value with a shorter
// one, chunked and not, and with a longer one: each read gives the new
// value exactly, never the old value's tail.
func TestMemcachedChunkedOverwrite(t *testing.T) {
	ctx := t.Context()
	s := newMemcached(t, stores.MemcachedConfig{Timeout: 5 * time.Second})
	for i, n := range []int{5 << 20, 3 << 20, 1<<20 + 1, 100, 4 << 20} {
		v := pattern(byte(i), n)
		require.NoError(t, s.Set(ctx, "k", v, 0))
		got, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, bytes.Equal(v, got), "after writing %d bytes, Get returned %d other bytes", n, len(got))
	}
}

// TestMemcachedChunkedNoTornReads runs one writer replacing a chunked
// value and readers reading it, on a small server (-m 64) that evicts
// chunks: every value embeds its own hash, and not one read may return a
// value that does not match it (a miss is fine).
func TestMemcachedChunkedNoTornReads(t *testing.T) {
	srv := servertest.StartMemcached(t, "-m", "64")
	// A generous Timeout: a write of 3 MiB on a loaded machine is slow,
	// and this test is about what readers see, not about time.
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{srv.Addr()}, Timeout: 10 * time.Second})
	ctx := t.Context()
	const writes = 150
	value := func(i int) []byte {
		body := pattern(byte(i), 1<<20+(i%7)*300_000) // 1 to 2.8 MiB: 2 or 3 chunks
		copy(body, fmt.Sprintf("write %d ", i))
		sum := sha256.Sum256(body)
		return append(sum[:], body...)
	}
	var (
		wg                 sync.WaitGroup
		done               atomic.Bool
		hits, misses, torn atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				v, err := s.Get(ctx, "k")
				switch {
				case errors.Is(err, stores.ErrNotFound):
					misses.Add(1)
				case err != nil:
					t.Errorf("Get: %v", err)
					return
				case len(v) < 32 || sha256.Sum256(v[32:]) != [32]byte(v[:32]):
					torn.Add(1)
				default:
					hits.Add(1)
				}
			}
		})
	}
	stop := func() { done.Store(true); wg.Wait() }
	defer stop() // the readers end before the store is closed, whatever happens
	for i := range writes {
		require.NoError(t, s.Set(ctx, "k", value(i), 0))
	}
	stop()
	t.Logf("%d writes of 1-2.8 MiB: %d whole reads, %d misses, %d torn", writes, hits.Load(), misses.Load(), torn.Load())
	assert.Zero(t, torn.Load(), "torn reads")
	assert.Positive(t, hits.Load(), "no read succeeded")
	assert.Greater(t, itemCount(t, srv.Addr()), 0)
}

// TestMemcachedLargestValue checks the documented largest value: 32 items
// of 1 MiB less 512 bytes by default, stored and read whole at exactly
// that size, refused one byte over.
func TestMemcachedLargestValue(t *testing.T) {
	srv := servertest.StartMemcached(t, "-m", "128")
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{srv.Addr()}, Timeout: 10 * time.Second})
	require.Equal(t, 33_538_048, s.MaxValueSize())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	v := pattern(7, s.MaxValueSize())
	require.NoError(t, s.Set(ctx, "largest", v, 0))
	got, err := s.Get(ctx, "largest")
	require.NoError(t, err)
	require.True(t, bytes.Equal(v, got), "the largest value read back")
	require.ErrorIs(t, s.Set(ctx, "over", append(v, 0), 0), stores.ErrTooLarge)
}

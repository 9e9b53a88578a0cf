package echocache

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// htmlPage returns size bytes of a product-listing page: HTML that
// compresses the way real pages do (about 3.5× with S2, 5× with zstd, at
// 64 KiB), the same bytes for every call with one size.
func htmlPage(size int) []byte {
	words := strings.Fields("cache echo redis store page value memcached shared process request handler " +
		"middleware server client latency header vary status fresh stale origin route group template " +
		"fragment token version tag invalidate")
	r := rand.New(rand.NewPCG(1, 2))
	w := func() string { return words[r.IntN(len(words))] }
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Catalogue</title>\n" +
		"<link rel=\"stylesheet\" href=\"/static/site.css\"></head>\n<body><header class=\"site-header\"><nav>" +
		"<a href=\"/\">Home</a> <a href=\"/catalogue\">Catalogue</a></nav></header>\n<main><table class=\"items\">\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "<tr id=\"item-%d\" class=\"row %s\"><td><a href=\"/items/%d-%s-%s\">%s %s %s</a></td>"+
			"<td class=\"price\">%d.%02d</td><td class=\"sku\">%08x</td><td>%s</td></tr>\n",
			i, w(), r.IntN(100000), w(), w(), w(), w(), w(), r.IntN(1000), r.IntN(100), r.Uint32(), w())
	}
	return b.Bytes()[:size]
}

// newCompressCache returns a Cache over store with CompressMinSize n,
// logging to log (when not nil).
func newCompressCache(t *testing.T, store stores.Store, n int, log *logRecorder) *Cache {
	t.Helper()
	cfg := Config{CompressMinSize: n}
	if log != nil {
		cfg.Logger, cfg.LogInterval = log, time.Nanosecond // every line
	}
	c, err := NewWithConfig(store, cfg)
	require.NoError(t, err)
	return c
}

// rawEntry returns what the store itself holds under the full key skey.
func rawEntry(t *testing.T, c *Cache, skey string) []byte {
	t.Helper()
	raw, err := c.Store().Get(context.Background(), skey)
	require.NoError(t, err, "the store's own Get of %q", skey)
	return raw
}

// TestCompressThreshold: which values a Cache stores compressed, read back
// whole through the typed API on redis (and on memory, which never
// compresses).
func TestCompressThreshold(t *testing.T) {
	noise := make([]byte, 16<<10)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(noise)
	tests := []struct {
		name       string
		store      string
		min        int
		value      []byte
		compressed bool
	}{
		{"ok, 64 KiB of HTML", "redis", 0, htmlPage(64 << 10), true},
		{"ok, a record of exactly the default threshold", "redis", 0, htmlPage(DefaultCompressMinSize - valueOverhead), true},
		{"ok, one byte below the default threshold", "redis", 0, htmlPage(DefaultCompressMinSize - valueOverhead - 1), false},
		{"ok, a threshold of its own", "redis", 512, htmlPage(1 << 10), true},
		{"ok, compression off", "redis", -1, htmlPage(64 << 10), false},
		{"ok, incompressible bytes are stored as they are", "redis", 0, noise, false},
		{"ok, memcached", "memcached", 0, htmlPage(64 << 10), true},
		{"ok, never in the process", "memory", 1, htmlPage(64 << 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCompressCache(t, openMWStore(t, tt.store), tt.min, nil)
			ctx := context.Background()
			require.NoError(t, Set(ctx, c, "k", tt.value, time.Minute, Strict()))
			raw := rawEntry(t, c, keyspace.Value+"k")
			assert.Equal(t, tt.compressed, record.Is(raw, record.Compressed), "stored compressed (%d bytes for a %d-byte value)", len(raw), len(tt.value))
			if tt.compressed {
				assert.Less(t, len(raw), len(tt.value)*2/3, "compressed size")
			}
			got, err := Get[[]byte](ctx, c, "k", Strict())
			require.NoError(t, err)
			assert.True(t, bytes.Equal(got, tt.value), "Get returns the %d bytes stored; got %d", len(tt.value), len(got))
		})
	}
}

// valueOverhead is what the typed API adds to a []byte value: the record
// frame and its format byte.
const valueOverhead = record.Overhead + 1

// TestCompressOldEntriesReadable: entries written as they are (by a Cache
// with compression off, which writes what every earlier version wrote) are
// read by a compressing Cache on the same namespace, and the other way
// round: pages, values, memoized results, fragments, one GetMany over
// both kinds.
func TestCompressOldEntriesReadable(t *testing.T) {
	for _, store := range []string{"redis", "memcached"} {
		t.Run(store, func(t *testing.T) {
			prefix := fmt.Sprintf("compress-old-%d:", rand.Uint64())
			plain := newCompressCache(t, openMWStoreNS(t, store, prefix), -1, nil)
			packed := newCompressCache(t, openMWStoreNS(t, store, prefix), 0, nil)
			ctx := context.Background()
			body := htmlPage(64 << 10)
			runs := 0
			handler := func(c echo.Context) error {
				runs++
				return c.HTMLBlob(http.StatusOK, body)
			}
			serve := func(c *Cache, path string) *http.Response {
				env := newRouteEnv(t, c)
				env.e.GET(path, handler, c.Cached(time.Minute))
				return env.do(http.MethodGet, path).Result()
			}
			square := func(_ context.Context, n int) (string, error) {
				runs++
				return strings.Repeat(fmt.Sprint(n*n), 2000), nil
			}
			memo := map[*Cache]*Memoized[int, string]{
				plain:  Memoize(plain, "sq", time.Minute, square),
				packed: Memoize(packed, "sq", time.Minute, square),
			}

			// Written plain, read by the compressing Cache.
			serve(plain, "/old")
			require.NoError(t, Set(ctx, plain, "old", string(body), time.Minute))
			require.NoError(t, plain.core().SetFragment(ctx, "f:old", body, time.Minute))
			_, err := memo[plain].Get(ctx, 12)
			require.NoError(t, err)
			// Written compressed, read by the plain one.
			serve(packed, "/new")
			require.NoError(t, Set(ctx, packed, "new", string(body), time.Minute))
			require.NoError(t, packed.core().SetFragment(ctx, "f:new", body, time.Minute))
			_, err = memo[packed].Get(ctx, 13)
			require.NoError(t, err)
			require.Equal(t, 4, runs)

			oldKey := pagecache.PageKeys(plain.core(), "/old", "")[0]
			newKey := pagecache.PageKeys(packed.core(), "/new", "")[0]
			assert.False(t, record.Is(rawEntry(t, plain, oldKey), record.Compressed), "the old page is plain")
			assert.True(t, record.Is(rawEntry(t, plain, newKey), record.Compressed), "the new page is compressed")

			for _, tt := range []struct {
				name string
				c    *Cache
				path string
			}{{"old page, compressing reader", packed, "/old"}, {"new page, plain reader", plain, "/new"}} {
				res := serve(tt.c, tt.path)
				got := new(bytes.Buffer)
				_, _ = got.ReadFrom(res.Body)
				assert.Equal(t, StatusHit, res.Header.Get("X-Cache"), tt.name)
				assert.True(t, bytes.Equal(got.Bytes(), body), "%s: the whole body (%d bytes; want %d)", tt.name, got.Len(), len(body))
			}
			for _, tt := range []struct {
				c   *Cache
				key string
			}{{packed, "old"}, {plain, "new"}} {
				v, err := Get[string](ctx, tt.c, tt.key, Strict())
				require.NoError(t, err, "Get(%q)", tt.key)
				assert.Equal(t, string(body), v, "Get(%q)", tt.key)
				f, err := tt.c.core().GetFragment(ctx, "f:"+tt.key)
				require.NoError(t, err, "GetFragment(%q)", tt.key)
				assert.True(t, bytes.Equal(f, body), "GetFragment(%q)", tt.key)
			}
			for _, c := range []*Cache{plain, packed} {
				m, err := GetMany[string](ctx, c, []string{"old", "new"}, Strict())
				require.NoError(t, err)
				assert.Len(t, m, 2, "GetMany of a plain and a compressed value")
				for _, n := range []int{12, 13} {
					v, err := memo[c].Get(ctx, n)
					require.NoError(t, err)
					assert.Equal(t, strings.Repeat(fmt.Sprint(n*n), 2000), v)
				}
			}
			assert.Equal(t, 4, runs, "every read was a hit: no handler or function ran again")
		})
	}
}

// hostileEntries are compressed records planted in a store by someone
// else: forged, damaged or made to expand without limit. Each has a valid
// checksum unless its name says otherwise.
func hostileEntries(t *testing.T, valid []byte) map[string][]byte {
	t.Helper()
	forge := func(block []byte) []byte {
		return record.Seal(append(record.Begin(nil, record.Compressed, 1), block...))
	}
	z := record.Compress(valid)
	require.True(t, record.Is(z, record.Compressed))
	flipped := bytes.Clone(z)
	flipped[len(flipped)/2] ^= 1
	truncated := s2.Encode(nil, valid)
	// 40 MiB of zeros after a page record's header: a real S2 block of a
	// few kilobytes that decodes past MaxCompressSize.
	zeros := make([]byte, 40<<20)
	copy(zeros, valid[:record.HeaderLen])
	return map[string][]byte{
		"a gigabyte declared in five bytes":       forge(binary.AppendUvarint(nil, 1<<30)),
		"40 MiB of zeros":                         forge(s2.Encode(nil, zeros)),
		"a flipped bit (bad checksum)":            flipped,
		"the body's end cut off":                  forge(truncated[:len(truncated)-len(truncated)/3]),
		"a truncated record (bad checksum)":       z[:len(z)-10],
		"not a record inside":                     forge(s2.Encode(nil, bytes.Repeat([]byte("<p>forged</p>"), 400))),
		"a record of another kind inside":         forge(s2.Encode(nil, record.Seal(append(record.Begin(nil, record.Fragment, 1), htmlPage(8<<10)...)))),
		"compressed twice":                        forge(s2.Encode(nil, z)),
		"an unknown version (a later format)":     record.Seal(append(record.Begin(nil, record.Compressed, 2), z[record.HeaderLen:len(z)-record.TrailerLen]...)),
		"a valid frame around an invalid S2 body": forge([]byte{0x80, 0x80, 0x04, 0xff, 0xff, 0xff, 0xff}),
	}
}

// TestCompressHostileEntries: a compressed entry that is forged, damaged
// or expands past MaxCompressSize is a miss on a real redis: the handler
// runs and its whole body is served, the entry is logged and replaced,
// nothing panics, and refusing it allocates nothing near what it claims.
func TestCompressHostileEntries(t *testing.T) {
	body := htmlPage(64 << 10)
	log := new(logRecorder)
	c := newCompressCache(t, openMWStore(t, "redis"), 0, log)
	env := newRouteEnv(t, c)
	env.e.GET("/h", env.counted(func(c echo.Context) error { return c.HTMLBlob(http.StatusOK, body) }),
		c.CachedWithConfig(env.cfg(time.Minute)))
	require.Equal(t, StatusMiss, env.do(http.MethodGet, "/h").Header().Get("X-Cache"))
	ctx := context.Background()
	pageKey := pagecache.PageKeys(c.core(), "/h", "")[0]
	valid, err := c.core().Get(ctx, pageKey)
	require.NoError(t, err)
	require.False(t, record.Is(valid, record.Compressed), "core.Get returns the record inside")

	for name, entry := range hostileEntries(t, valid) {
		t.Run("page, "+name, func(t *testing.T) {
			require.NoError(t, c.Store().Set(ctx, pageKey, entry, time.Minute))
			runs := env.calls.Load()
			rec := env.do(http.MethodGet, "/h")
			assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"))
			assert.Equal(t, runs+1, env.calls.Load(), "the handler ran")
			assert.True(t, bytes.Equal(rec.Body.Bytes(), body), "the whole body (%d bytes; want %d)", rec.Body.Len(), len(body))
			assert.False(t, bytes.Equal(rawEntry(t, c, pageKey), entry), "the entry was replaced")
			assert.Equal(t, StatusHit, env.do(http.MethodGet, "/h").Header().Get("X-Cache"), "the page stored again")
		})
		t.Run("value, "+name, func(t *testing.T) {
			require.NoError(t, c.Store().Set(ctx, keyspace.Value+"v", entry, time.Minute))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Get[string](ctx, c, "v", Strict())
			runtime.ReadMemStats(&after)
			assert.ErrorIs(t, err, ErrNotFound)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "bytes allocated to refuse it")
			_, err = c.Store().Get(ctx, keyspace.Value+"v")
			assert.ErrorIs(t, err, stores.ErrNotFound, "the entry was deleted")
		})
	}
	t.Run("GetMany", func(t *testing.T) {
		require.NoError(t, Set(ctx, c, "good", string(body), time.Minute))
		items := map[string][]byte{}
		var keys []string
		for name, entry := range hostileEntries(t, valid) {
			items[keyspace.Value+name] = entry
			keys = append(keys, name)
		}
		require.NoError(t, stores.SetMany(ctx, c.Store(), items, time.Minute))
		m, err := GetMany[string](ctx, c, append(keys, "good"), Strict())
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"good": string(body)}, m)
		for k := range items {
			_, err := c.Store().Get(ctx, k)
			assert.ErrorIs(t, err, stores.ErrNotFound, "%q was deleted", k)
		}
	})
	logged := strings.Join(log.all(), "\n")
	assert.Contains(t, logged, record.ErrExpands.Error())
	assert.Contains(t, logged, record.ErrCompressed.Error())
	assert.Contains(t, logged, record.ErrChecksum.Error())
}

// TestCompressStatsUnchanged: the same requests on a compressing Cache and
// on a plain one give the same statuses, headers (Cache-Status, X-Cache,
// Age), bodies and statistics; only the stored bytes differ.
func TestCompressStatsUnchanged(t *testing.T) {
	body := htmlPage(64 << 10)
	type result struct {
		code   int
		header http.Header
		body   []byte
	}
	run := func(n int) ([]result, Stats, []byte) {
		c := newCompressCache(t, openMWStore(t, "redis"), n, nil)
		refreshed := make(chan struct{}, 1)
		pagecache.HooksOf(c.core()).RefreshDone = func() { refreshed <- struct{}{} }
		env := newRouteEnv(t, c)
		cfg := env.cfg(time.Minute)
		cfg.StaleWhileRevalidate = time.Minute
		env.e.GET("/s", env.counted(func(c echo.Context) error { return c.HTMLBlob(http.StatusOK, body) }), c.CachedWithConfig(cfg))
		var out []result
		// A miss, two hits, a stale hit and its refresh, a hit of the
		// refreshed page.
		for i, step := range []time.Duration{0, time.Second, 30 * time.Second, 45 * time.Second, time.Second} {
			env.clock.Advance(step)
			rec := env.do(http.MethodGet, "/s")
			rec.Header().Del("Date")
			out = append(out, result{rec.Code, rec.Header(), rec.Body.Bytes()})
			require.Equal(t, http.StatusOK, rec.Code, "request %d", i)
			if rec.Header().Get("X-Cache") == StatusStale {
				<-refreshed
			}
		}
		return out, c.Stats(), rawEntry(t, c, pagecache.PageKeys(c.core(), "/s", "")[0])
	}
	plain, plainStats, plainRaw := run(-1)
	packed, packedStats, packedRaw := run(0)
	require.True(t, record.Is(packedRaw, record.Compressed), "the compressing Cache stored the page compressed")
	require.False(t, record.Is(plainRaw, record.Compressed))
	t.Logf("a 64 KiB page: %d bytes plain, %d compressed", len(plainRaw), len(packedRaw))
	require.Len(t, packed, len(plain))
	for i := range plain {
		assert.Equal(t, plain[i].header, packed[i].header, "request %d: header", i)
		assert.True(t, bytes.Equal(plain[i].body, packed[i].body), "request %d: body", i)
	}
	assert.Equal(t, plainStats, packedStats)
	assert.Equal(t, uint64(3), packedStats.Hits)
	assert.Equal(t, uint64(1), packedStats.StaleHits)
	assert.Equal(t, uint64(2), packedStats.Stores)
	assert.Contains(t, packed[1].header.Get("Cache-Status"), "hit")
}

// TestCompressedEntryInProcess: a compressed record in an in-process store
// (never written there by a Cache, but a store can be handed bytes from
// elsewhere) is read like any other, through the store's View as well.
func TestCompressedEntryInProcess(t *testing.T) {
	body := htmlPage(64 << 10)
	for _, store := range []stores.Store{openMWStore(t, "memory"), newMWTestStore()} {
		t.Run(fmt.Sprintf("%T", store), func(t *testing.T) {
			c := New(store)
			env := newRouteEnv(t, c)
			env.e.GET("/p", env.counted(func(c echo.Context) error { return c.HTMLBlob(http.StatusOK, body) }), c.CachedWithConfig(env.cfg(time.Minute)))
			env.do(http.MethodGet, "/p")
			ctx := context.Background()
			pageKey := pagecache.PageKeys(c.core(), "/p", "")[0]
			raw := rawEntry(t, c, pageKey)
			require.False(t, record.Is(raw, record.Compressed), "an in-process store gets plain records")
			require.NoError(t, store.Set(ctx, pageKey, record.Compress(raw), time.Minute))
			for range 2 {
				rec := env.do(http.MethodGet, "/p")
				assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"))
				assert.True(t, bytes.Equal(rec.Body.Bytes(), body), "the whole body")
			}
			assert.Equal(t, int64(1), env.calls.Load())
		})
	}
}

// TestCompressedLocalTier: behind a local tier (memcached+local, whose
// copies are the shared store's compressed bytes), a 64 KiB page is
// stored compressed, served whole from the shared store and then from the
// tier's copy (Cache-Status detail=local), and the copy is decoded once:
// later local hits allocate nothing near the page's size. Typed values
// read from the copy are whole too.
func TestCompressedLocalTier(t *testing.T) {
	ctx := context.Background()
	s, err := stores.Open(ctx, "memcached://"+servertest.Memcached(t)+"?local=4MiB&local_max_age=1h&prefix="+mwPrefix(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Clear(ctx); _ = s.Close() })
	c := newMWCache(t, s)
	body := htmlPage(64 << 10)
	e := echo.New()
	e.GET("/page", c.Cached(time.Hour)(func(c echo.Context) error { return c.HTMLBlob(http.StatusOK, body) }))
	var buf bytes.Buffer // reused, so that only the cache's allocations count
	get := func() string {
		w := newServerWriter(&buf)
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/page", nil))
		// The page's write follows its response: the next request reads
		// the store once it has ended.
		require.NoError(t, pagecache.FlushWrites(ctx, c.core()))
		require.Equal(t, http.StatusOK, w.code)
		require.True(t, bytes.Equal(buf.Bytes(), body), "the whole page: %d bytes, want %d", buf.Len(), len(body))
		return ttlDigits.ReplaceAllString(w.sent.Get("Cache-Status"), "ttl=N")
	}
	for i, want := range []string{
		"echocache; fwd=uri-miss; ttl=N; stored", "echocache; hit; ttl=N",
		"echocache; hit; ttl=N; detail=local", "echocache; hit; ttl=N; detail=local",
	} {
		assert.Equal(t, want, get(), "request %d", i+1)
	}
	pageKey := pagecache.PageKeys(c.core(), "/page", "")[0]
	tier := s.(*stores.LocalTier)
	raw, err := tier.Shared().Get(ctx, pageKey)
	require.NoError(t, err)
	require.True(t, record.Is(raw, record.Compressed), "the shared entry is compressed")
	raw, err = tier.Get(ctx, pageKey)
	require.NoError(t, err)
	require.False(t, record.Is(raw, record.Compressed), "the tier's copy is decoded")

	// TotalAlloc counts every goroutine's allocations (the tier's
	// connections, the runtime): the least of three batches is the hits'.
	perHit := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const hits = 20
		for range hits {
			get()
		}
		runtime.ReadMemStats(&after)
		perHit = min(perHit, (after.TotalAlloc-before.TotalAlloc)/hits)
	}
	assert.Less(t, perHit, uint64(len(body)/2), "bytes allocated per local hit")

	require.NoError(t, Set(ctx, c, "v", string(body), time.Hour))
	for range 3 {
		v, err := Get[string](ctx, c, "v", Strict())
		require.NoError(t, err)
		assert.Equal(t, string(body), v)
	}
}

// A local tier keeps compressed entries decoded, so that its MaxBytes
// bounds what its copies, and what their readers keep beside them, hold:
// pages that compress a thousandfold do not fill the process with a
// thousand times the tier's size.
func TestLocalTierCountsDecodedBytes(t *testing.T) {
	ctx := context.Background()
	for _, base := range []string{
		servertest.Redis(t) + "?local=1MiB",
		"memcached://" + servertest.Memcached(t) + "?local=1MiB&local_max_age=1h",
	} {
		t.Run(strings.SplitN(base, ":", 2)[0], func(t *testing.T) {
			s, err := stores.Open(ctx, base+"&prefix="+mwPrefix(t))
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Clear(ctx); _ = s.Close() })
			tier := s.(*stores.LocalTier)
			c := newMWCache(t, s)
			body := htmlPage(256 << 10) // compresses to a few KiB
			e := echo.New()
			e.GET("/p/:i", c.Cached(time.Hour)(func(ec echo.Context) error {
				return ec.HTMLBlob(http.StatusOK, append([]byte(ec.Param("i")), body...))
			}))
			const pages = 40 // 10 MiB decoded, 10 times the tier
			for range 3 {
				for i := range pages {
					rec := httptest.NewRecorder()
					e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/p/"+strconv.Itoa(i), nil))
					require.Equal(t, http.StatusOK, rec.Code)
					require.Equal(t, len(body)+len(strconv.Itoa(i)), rec.Body.Len())
					require.NoError(t, pagecache.FlushWrites(ctx, c.core()))
				}
			}
			st := tier.Stats()
			assert.LessOrEqual(t, st.Bytes, st.MaxBytes, "the tier's bytes: %+v", st)
			assert.Less(t, st.Entries, int64(pages/4), "a 1 MiB tier holds at most four 256 KiB pages: %+v", st)
			assert.Positive(t, st.Entries, "the tier keeps copies: %+v", st)
		})
	}
}

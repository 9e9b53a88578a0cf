package integration

// Abuse tests: hostile URLs, corrupt entries planted in the servers,
// oversized bodies and values, header injection. Through real HTTP on the
// file store and on redis and memcached servers the tests start, bad input
// gives a clear error or a safe miss: never a panic, a truncated response or
// another request's response.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// rawEntry is one entry as it sits in a backend, found by listing the
// backend itself rather than by asking the cache.
type rawEntry struct {
	id    string // the server's key (redis, memcached) or the store key (file)
	path  string // file only: the entry's file
	value []byte // the value the cache stored
}

// abuseStore is a store the abuse tests run on, with raw access to what
// the cache stored in it.
type abuseStore struct {
	store stores.Store
	// entries lists every entry of the store's namespace.
	entries func(t *testing.T) []rawEntry
	// plant replaces the value of an entry behind the cache's back.
	plant func(t *testing.T, e rawEntry, value []byte)
	// root, for the file store, is a directory that holds the store's
	// directory a few levels down: nothing may appear in it outside that.
	root, dir string
}

type abuseBackend struct {
	name string
	open func(t *testing.T) *abuseStore
}

var abuseBackends = []abuseBackend{
	{"file", openFileAbuse},
	{"redis", openRedisAbuse},
	{"memcached", openMemcachedAbuse},
}

func openFileAbuse(t *testing.T) *abuseStore {
	root := t.TempDir()
	dir := filepath.Join(root, "deep", "er", "store")
	// Pruning off: the tests count on what they stored staying there.
	s := openStore(t, "file://"+filepath.ToSlash(dir)+"?max_entries=0&prefix="+namespace("abuse"))
	a := &abuseStore{store: s, root: root, dir: dir}
	a.entries = func(t *testing.T) []rawEntry {
		t.Helper()
		var out []rawEntry
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !isHex64(d.Name()) {
				return err
			}
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed in between
			}
			if err != nil {
				return err
			}
			key, value, ok := parseFileEntry(b)
			if !ok {
				return nil // a corrupt file (planted by a test) holds no entry
			}
			out = append(out, rawEntry{id: key, path: p, value: value})
			return nil
		})
		require.NoError(t, err)
		return out
	}
	a.plant = func(t *testing.T, e rawEntry, value []byte) {
		t.Helper()
		// Through the file store itself: a well-formed file holding a value
		// that is not a cache entry.
		require.NoError(t, s.Set(context.Background(), e.id, value, time.Minute))
	}
	return a
}

func isHex64(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseFileEntry reads the key and value of a file store entry: record
// header "ECD\x01", expiry (8 bytes), key length (4, little-endian), value
// length (8), key, value, CRC-32C (4). See stores.File.
func parseFileEntry(b []byte) (key string, value []byte, ok bool) {
	const header, trailer = 24, 4
	if len(b) < header+trailer || string(b[:4]) != "ECD\x01" {
		return "", nil, false
	}
	klen := uint64(b[12]) | uint64(b[13])<<8 | uint64(b[14])<<16 | uint64(b[15])<<24
	var vlen uint64
	for i := 7; i >= 0; i-- {
		vlen = vlen<<8 | uint64(b[16+i])
	}
	if header+klen+vlen+trailer != uint64(len(b)) {
		return "", nil, false
	}
	return string(b[header : header+klen]), b[header+klen : header+klen+vlen], true
}

func openRedisAbuse(t *testing.T) *abuseStore {
	srv := servertest.StartRedis(t)
	prefix := namespace("abuse")
	s := openStore(t, "redis://"+srv.Addr()+"/0?prefix="+prefix)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rc.Close() })
	a := &abuseStore{store: s}
	a.entries = func(t *testing.T) []rawEntry {
		t.Helper()
		ctx := context.Background()
		var out []rawEntry
		iter := rc.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			v, err := rc.Get(ctx, iter.Val()).Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			require.NoError(t, err)
			out = append(out, rawEntry{id: iter.Val(), value: v})
		}
		require.NoError(t, iter.Err())
		return out
	}
	a.plant = func(t *testing.T, e rawEntry, value []byte) {
		t.Helper()
		require.NoError(t, rc.Set(context.Background(), e.id, value, time.Minute).Err())
	}
	return a
}

func openMemcachedAbuse(t *testing.T) *abuseStore {
	srv := servertest.StartMemcached(t)
	prefix := namespace("abuse")
	// The store's own i/o timeout as long as abuseCache's StoreTimeout: on
	// a loaded machine a write that outlives the default is lost, and the
	// tests that look for what was stored would not find it.
	s := openStore(t, "memcached://"+srv.Addr()+"?timeout=5s&prefix="+prefix)
	mc := memcache.New(srv.Addr())
	mc.Timeout = 5 * time.Second
	a := &abuseStore{store: s}
	a.entries = func(t *testing.T) []rawEntry {
		t.Helper()
		var keys []string
		for _, k := range servertest.MemcachedKeys(t, srv.Addr()) {
			// The namespace's generation counters are not entries.
			if strings.HasPrefix(k, prefix) && !strings.HasPrefix(k, prefix+"gen@") {
				keys = append(keys, k)
			}
		}
		items, err := mc.GetMulti(keys)
		require.NoError(t, err)
		var out []rawEntry
		for _, k := range keys {
			if it, ok := items[k]; ok {
				out = append(out, rawEntry{id: k, value: it.Value})
			}
		}
		return out
	}
	a.plant = func(t *testing.T, e rawEntry, value []byte) {
		t.Helper()
		require.NoError(t, mc.Set(&memcache.Item{Key: e.id, Value: value, Expiration: 60}))
	}
	return a
}

// holding returns the entries whose value contains s.
func holding(entries []rawEntry, s string) []rawEntry {
	var out []rawEntry
	for _, e := range entries {
		v, err := record.Decompress(e.value, echocache.MaxCompressSize) // an entry stored compressed holds s too
		if err == nil && bytes.Contains(v, []byte(s)) {
			out = append(out, e)
		}
	}
	return out
}

// abuseCache is a Cache over s with a generous store timeout, so that a
// loaded machine cannot turn a hit into a fail-open miss, and no breaker,
// so that nothing is skipped.
func abuseCache(t *testing.T, s stores.Store) *echocache.Cache {
	t.Helper()
	c, err := echocache.NewWithConfig(s, echocache.Config{
		StoreTimeout:     5 * time.Second,
		BreakerThreshold: -1,
		Logger:           quietLogger,
	})
	require.NoError(t, err)
	return c
}

// hostileGroups are the URLs of TestAbuseHostileKeys. The URLs of one group
// may share a cached page (they are one page by the key rules: the same
// path and the same query once decoded, sorted and rid of utm_*, fbclid and
// gclid); URLs of different groups must never get each other's page.
var hostileGroups = func() [][]string {
	long := strings.Repeat("a", 8<<10)
	many := func(changed int) string {
		var b strings.Builder
		b.WriteString("/k/many?")
		for i := range 400 {
			v := i
			if i == changed {
				v = -1
			}
			fmt.Fprintf(&b, "p%d=%d&", i, v)
		}
		return b.String()
	}
	return [][]string{
		// Dot segments, encoded or not, and encoded slashes.
		{"/k/a/../b"},
		{"/k/b"},
		{"/k/../../../etc/passwd"},
		{"/k/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/k/%2E%2E/%2E%2E/%2E%2E/etc/passwd"},
		{"/k/..%2f..%2f..%2fetc%2fpasswd"},
		{"/k/%2e%2e%5c%2e%2e%5cwindows"},
		{"/k/q?file=../../etc/passwd", "/k/q?file=..%2F..%2Fetc%2Fpasswd"},
		{"/k/q?file=%2e%2e/%2e%2e/etc/shadow"},
		{"/k/sl//ash"},
		{"/k/sl/ash"},
		{"/k/trail/"},
		{"/k/trail"},
		// NUL and other escapes: decoded, doubly encoded, invalid, overlong.
		{"/k/%00"},
		{"/k/%2500"},
		{"/k/n%00ul?x=%00"},
		{"/k/q?f=%00", "/k/q?f=%00&utm_source=%00"},
		{"/k/q?f=%2500"},
		{"/k/q?f=", "/k/q?f"},
		{"/k/q?f=%zz"},
		{"/k/q?f=%25zz"},
		{"/k/q?f=%"},
		{"/k/q?f=%u002e%u002e"},
		{"/k/q?f=%C0%AE%C0%AE"},
		{"/k/q?f=..", "/k/q?f=%2E%2E"},
		{"/k/q?f=%ff%fe"},
		{"/k/q?%00=1"},
		{"/k/q?=1"},
		// Unicode: NFC and NFD are different bytes, hence different pages.
		{"/k/caf%C3%A9", "/k/caf%c3%a9"},
		{"/k/cafe%CC%81"},
		{"/k/caf%E9"},
		{"/k/q?name=%E2%80%AE%E2%80%8Bevil"},
		{"/k/q?name=evil"},
		// Long and numerous: keys past memcached's 250 bytes, and one byte
		// apart at the very end.
		{"/k/long?q=" + long + "a"},
		{"/k/long?q=" + long + "b"},
		{"/k/" + strings.Repeat("x", 3000)},
		{"/k/" + strings.Repeat("x", 3001)},
		{many(-1)},
		{many(200)},
		// Query structure: encoded separators are data, not structure.
		{"/k/q?a=1&b=2", "/k/q?b=2&a=1", "/k/q?a=%31&b=2", "/k/q?&a=1&&b=2&"},
		{"/k/q?a=1%26b%3D2"},
		{"/k/q?a%3D1=2"},
		{"/k/q?a=1%3D2"},
		{"/k/q?a=1;b=2"},
		{"/k/q?a=1+2", "/k/q?a=1%202"},
		{"/k/q?a=1%2B2"},
		{"/k/q?x=1&x=2"},
		{"/k/q?x=2&x=1"},
		{"/k/sp%20ace"},
		{"/k/sp+ace"},
		// Trackers are left out of the key; look-alikes are not.
		{"/k/u", "/k/u?utm_source=news", "/k/u?utm_source", "/k/u?utm_source=a&utm_medium=b&fbclid=c&gclid=d"},
		{"/k/u?x=1", "/k/u?x=1&utm_source=a", "/k/u?utm_campaign=c&x=1&utm_medium=b", "/k/u?x=1&fbclid=z&gclid=y"},
		// The handler of a page stored for a URL with trackers sees the
		// URL without them: the page is the plain URL's.
		{"/k/u?x=2", "/k/u?x=2&utm_source=a"},
		{"/k/u?utm=1"},
		{"/k/u?UTM_SOURCE=1"},
	}
}()

// Hostile URLs on every store: each response is its own URL's page (or the
// page of a URL that is the same page by the key rules), every URL is
// cached, and the file store writes nothing outside its directory.
func TestAbuseHostileKeys(t *testing.T) {
	for _, be := range abuseBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			as := be.open(t)
			c := abuseCache(t, as.store)
			e := echo.New()
			e.GET("/k/*", func(ec echo.Context) error {
				return ec.String(http.StatusOK, "uri="+ec.Request().RequestURI)
			}, c.Cached(time.Minute))
			ts := httptest.NewServer(e)
			defer ts.Close()

			type probe struct {
				url   string
				group []string
			}
			var probes []probe
			for _, g := range hostileGroups {
				for _, u := range g {
					probes = append(probes, probe{u, g})
				}
			}
			check := func(p probe, r reply) {
				t.Helper()
				require.Equal(t, http.StatusOK, r.status, "GET %.80s", p.url)
				owner, ok := strings.CutPrefix(r.body, "uri=")
				require.True(t, ok, "GET %.80s = %.80q", p.url, r.body)
				require.True(t, slices.Contains(p.group, owner),
					"GET %.120s got the page of %.120s, another page", p.url, owner)
			}
			// First pass: the first URL of each group misses and is stored
			// under its own URL (which also shows that the client sent
			// the URL unchanged).
			for i, p := range probes {
				r := fetch(t, ts.URL+p.url)
				check(p, r)
				if i == 0 || probes[i-1].group[0] != p.group[0] {
					require.Equal(t, "MISS", r.header.Get("X-Cache"), "GET %.80s", p.url)
					require.Equal(t, "uri="+p.url, r.body)
				}
			}
			// Second pass, in reverse: every URL is a hit of its own group.
			for _, p := range slices.Backward(probes) {
				r := fetch(t, ts.URL+p.url)
				check(p, r)
				assert.Equal(t, "HIT", r.header.Get("X-Cache"), "GET %.80s again", p.url)
			}

			if as.root != "" {
				err := filepath.WalkDir(as.root, func(p string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					inside := p == as.dir || strings.HasPrefix(p, as.dir+string(filepath.Separator))
					parent := strings.HasPrefix(as.dir, p+string(filepath.Separator)) && d.IsDir()
					if !inside && !parent && p != as.root {
						t.Errorf("the file store wrote %s, outside its directory %s", p, as.dir)
					}
					return nil
				})
				require.NoError(t, err)
			}
		})
	}
}

// corruption turns a stored page entry into something it must not be
// served from. foreign is the valid entry of another page.
type corruption struct {
	name string
	f    func(valid, foreign []byte) []byte
}

var corruptions = []corruption{
	{"nok, garbage", func(_, _ []byte) []byte { return []byte("this is not a cache entry") }},
	{"nok, empty", func(_, _ []byte) []byte { return []byte{} }},
	{"nok, first half", func(v, _ []byte) []byte { return bytes.Clone(v[:len(v)/2]) }},
	{"nok, last byte cut", func(v, _ []byte) []byte { return bytes.Clone(v[:len(v)-1]) }},
	{"nok, byte appended", func(v, _ []byte) []byte { return append(bytes.Clone(v), 0) }},
	{"nok, body tampered", func(v, _ []byte) []byte {
		// Same length, different page: only the checksum can tell.
		return bytes.Replace(bytes.Clone(v), []byte(" run #1"), []byte(" run #9"), 1)
	}},
	{"nok, random bytes flipped", func(v, _ []byte) []byte {
		b := bytes.Clone(v)
		r := rand.New(rand.NewPCG(1, 2))
		for range 8 {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		}
		return b
	}},
	{"nok, header bytes zeroed", func(v, _ []byte) []byte {
		b := bytes.Clone(v)
		clear(b[4:min(len(b), 64)])
		return b
	}},
	{"nok, length fields maxed", func(v, _ []byte) []byte {
		b := bytes.Clone(v)
		for i := 40; i < min(len(b), 64); i++ {
			b[i] = 0xff
		}
		return b
	}},
	{"nok, another page's entry", func(_, foreign []byte) []byte { return bytes.Clone(foreign) }},
}

// Corrupt values planted straight into the servers (and the file
// directory) under the cache's own keys, found by listing the backend: the
// next request is a miss served fresh, the entry is replaced, and the
// request after that is a hit of the new page.
func TestAbuseCorruptEntries(t *testing.T) {
	for _, be := range abuseBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			as := be.open(t)
			c := abuseCache(t, as.store)
			var mu sync.Mutex
			runs := map[string]int{}
			page := func(ec echo.Context) error {
				mu.Lock()
				runs[ec.Request().URL.Path]++
				n := runs[ec.Request().URL.Path]
				mu.Unlock()
				return ec.String(http.StatusOK, fmt.Sprintf("page %s run #%d", ec.Request().URL.Path, n))
			}
			e := echo.New()
			e.GET("/c/:case", page, c.Cached(time.Minute))
			e.GET("/o/:case", page, c.Cached(time.Minute))
			ts := httptest.NewServer(e)
			defer ts.Close()

			cases := slices.Clone(corruptions)
			if as.root != "" {
				cases = append(cases, corruption{name: "nok, file overwritten with garbage"})
			}
			for i, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					path := fmt.Sprintf("/c/%d", i)
					other := fmt.Sprintf("/o/%d", i)
					want := func(p string, run int) string { return fmt.Sprintf("page %s run #%d", p, run) }

					r := fetch(t, ts.URL+path)
					require.Equal(t, want(path, 1), r.body)
					r = fetch(t, ts.URL+path)
					require.Equal(t, "HIT", r.header.Get("X-Cache"))
					require.Equal(t, want(other, 1), fetch(t, ts.URL+other).body)

					require.NoError(t, c.Flush(context.Background())) // the page is written after its response
					all := as.entries(t)
					mine := holding(all, want(path, 1))
					require.NotEmpty(t, mine, "the page's entries are listed")
					foreign := holding(all, want(other, 1))
					require.NotEmpty(t, foreign, "the other page's entries are listed")
					for _, ent := range mine {
						if tt.f == nil {
							require.NoError(t, os.WriteFile(ent.path, []byte("garbage, not even a file entry"), 0o600))
							continue
						}
						as.plant(t, ent, tt.f(ent.value, foreign[0].value))
					}

					r = fetch(t, ts.URL+path)
					require.Equal(t, http.StatusOK, r.status)
					assert.Equal(t, "MISS", r.header.Get("X-Cache"), "a corrupt entry is a miss")
					require.Equal(t, want(path, 2), r.body, "served fresh, never from the planted value")

					require.NoError(t, c.Flush(context.Background())) // the page is written after its response
					assert.NotEmpty(t, holding(as.entries(t), want(path, 2)), "the fresh page is stored again")
					r = fetch(t, ts.URL+path)
					assert.Equal(t, "HIT", r.header.Get("X-Cache"))
					assert.Equal(t, want(path, 2), r.body)
					assert.Equal(t, want(other, 1), fetch(t, ts.URL+other).body, "the other page is untouched")
				})
			}
		})
	}
}

// bigBody is the body /big/:n writes: n bytes that tell the path and the
// run apart, then hex digits drawn from a generator seeded by both, which
// compression does not shrink, so that the body is stored at its size.
func bigBody(path string, run, n int) []byte {
	b := make([]byte, 0, n)
	b = fmt.Appendf(b, "path=%s run #%d|", path, run)
	var seed [32]byte
	copy(seed[:], b)
	r := rand.NewChaCha8(seed)
	const digits = "0123456789abcdef"
	for len(b) < n {
		b = append(b, digits[r.Uint64()&15])
	}
	return b[:n]
}

// A body over MaxBodySize reaches the client whole, written in pieces
// with a flush in between, and is not stored; a body of exactly
// MaxBodySize is stored. A body under MaxBodySize but over memcached's item
// size limit is not stored either, and the request does not suffer.
func TestAbuseOversizedBody(t *testing.T) {
	const maxBody = 1000
	tests := []struct {
		name    string
		n       int
		maxBody int64
		stored  func(backend string) bool
	}{
		{"ok, under MaxBodySize", maxBody - 1, maxBody, always},
		{"ok, exactly MaxBodySize", maxBody, maxBody, always},
		{"nok, one byte over", maxBody + 1, maxBody, never},
		{"nok, four times over", 4 * maxBody, maxBody, never},
		{"nok, 300 KB over a 1000-byte limit", 300 << 10, maxBody, never},
		{"ok, over memcached's 1 MiB item limit (stored in chunks there)", 1536 << 10, 4 << 20, always},
	}
	for _, be := range abuseBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			as := be.open(t)
			c := abuseCache(t, as.store)
			e := echo.New()
			var runs sync.Map // path -> *atomic.Int64
			for i, tt := range tests {
				cfg := echocache.DefaultRouteConfig
				cfg.TTL = time.Minute
				cfg.MaxBodySize = tt.maxBody
				e.GET(fmt.Sprintf("/big/%d", i), func(ec echo.Context) error {
					p := ec.Request().URL.Path
					v, _ := runs.LoadOrStore(p, new(atomic.Int64))
					body := bigBody(p, int(v.(*atomic.Int64).Add(1)), tt.n)
					w := ec.Response()
					w.Header().Set(echo.HeaderContentType, "application/octet-stream")
					w.WriteHeader(http.StatusOK)
					for chunk := 0; len(body) > 0; chunk++ {
						k := min(len(body), 400+chunk*37)
						if _, err := w.Write(body[:k]); err != nil {
							return err
						}
						body = body[k:]
						if chunk == 1 {
							w.Flush()
						}
					}
					return nil
				}, c.CachedWithConfig(cfg))
			}
			ts := httptest.NewServer(e)
			defer ts.Close()

			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					path := fmt.Sprintf("/big/%d", i)
					tooLarge := c.Stats().Bypasses[echocache.BypassTooLarge]
					first := fetch(t, ts.URL+path)
					require.Equal(t, http.StatusOK, first.status)
					require.Equal(t, "MISS", first.header.Get("X-Cache"))
					require.True(t, first.body == string(bigBody(path, 1, tt.n)),
						"the client gets the whole body: %d bytes, want %d", len(first.body), tt.n)

					again := fetch(t, ts.URL+path)
					require.Equal(t, http.StatusOK, again.status)
					require.NoError(t, c.Flush(context.Background())) // the page is written after its response
					stored := holding(as.entries(t), fmt.Sprintf("path=%s run #", path))
					if tt.stored(be.name) {
						assert.Equal(t, "HIT", again.header.Get("X-Cache"))
						assert.True(t, again.body == first.body, "the cached body is the whole body: %d bytes, want %d", len(again.body), tt.n)
						assert.NotEmpty(t, stored)
						return
					}
					assert.Equal(t, "MISS", again.header.Get("X-Cache"), "nothing was stored")
					assert.True(t, again.body == string(bigBody(path, 2, tt.n)),
						"the handler ran again and the client got the whole body: %d bytes, want %d", len(again.body), tt.n)
					assert.Zero(t, len(stored), "no entry holds the body")
					if tt.n > int(tt.maxBody) {
						assert.Equal(t, tooLarge+2, c.Stats().Bypasses[echocache.BypassTooLarge], "both responses bypassed as too large")
					}
				})
			}
		})
	}
}

func always(string) bool { return true }
func never(string) bool  { return false }

// A value over what memcached takes, through the typed API: the loader's
// value is returned without an error (the store's refusal is counted, not
// surfaced), nothing is cached, a Strict call gets stores.ErrTooLarge, and
// the store keeps working for other values. Both the store's own limit
// (max_value_size, no round trip) and the server's (an item over its -I:
// the server says "object too large") are tried.
func TestAbuseTypedTooLarge(t *testing.T) {
	srv := servertest.StartMemcached(t, "-I", "1m")
	big := string(storetest.Incompressible(2 << 20)) // 2 MiB, compressed or not
	tests := []struct {
		name, url string
	}{
		{"store's limit", "memcached://" + srv.Addr() + "?max_value_size=1MiB&prefix=" + namespace("big-store")},
		{"server's limit", "memcached://" + srv.Addr() + "?max_item_size=8MiB&prefix=" + namespace("big-server")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c := abuseCache(t, openStore(t, tt.url))
			var loads atomic.Int64
			loader := func(context.Context) (string, error) { loads.Add(1); return big, nil }

			for i := 1; i <= 2; i++ {
				v, err := echocache.GetOrSet(ctx, c, "big", time.Minute, loader)
				require.NoError(t, err, "fail-open: the refusal is not surfaced")
				require.True(t, v == big, "the loader's value, whole (%d bytes)", len(v))
				require.Equal(t, int64(i), loads.Load(), "nothing was cached")
			}
			v, err := echocache.GetOrSet(ctx, c, "big", time.Minute, loader, echocache.Strict())
			require.ErrorIs(t, err, stores.ErrTooLarge, "a Strict call sees why nothing was cached")
			require.True(t, v == big, "a Strict call still returns the loaded value")
			require.NoError(t, echocache.Set(ctx, c, "big", big, time.Minute), "Set fails open too")
			require.ErrorIs(t, echocache.Set(ctx, c, "big", big, time.Minute, echocache.Strict()), stores.ErrTooLarge)

			var memoRuns atomic.Int64
			memo := echocache.Memoize(c, "repeat", time.Minute, func(_ context.Context, n int) (string, error) {
				memoRuns.Add(1)
				return string(storetest.Incompressible(n)), nil
			})
			for range 2 {
				v, err := memo.Get(ctx, 2<<20)
				require.NoError(t, err)
				require.Len(t, v, 2<<20)
			}
			assert.Equal(t, int64(2), memoRuns.Load(), "an oversized memoized result is not cached")

			// The store is fine for values that fit.
			var small atomic.Int64
			for range 2 {
				v, err := echocache.GetOrSet(ctx, c, "small", time.Minute, func(context.Context) (string, error) {
					small.Add(1)
					return "fits", nil
				})
				require.NoError(t, err)
				require.Equal(t, "fits", v)
			}
			assert.Equal(t, int64(1), small.Load(), "a small value is cached after the refusals")
			assert.Positive(t, c.Stats().Bypasses[echocache.BypassTooLarge], "the refusals are counted")
			assert.Zero(t, c.Stats().StoreErrors, "a refusal is not a store failure")
		})
	}

	// A value the store refuses says nothing about the server's health:
	// refusals must not open the circuit breaker and stop caching for
	// everything else.
	t.Run("refusals do not open the breaker", func(t *testing.T) {
		ctx := t.Context()
		c, err := echocache.NewWithConfig(openStore(t, "memcached://"+srv.Addr()+"?prefix="+namespace("big-breaker")),
			echocache.Config{StoreTimeout: 5 * time.Second, BreakerThreshold: 3, Logger: quietLogger})
		require.NoError(t, err)
		(*core.Cache)(c).SetProbeInterval(time.Hour)
		for range 3 {
			require.NoError(t, echocache.Set(ctx, c, "big", big, time.Minute))
		}
		require.NoError(t, echocache.Set(ctx, c, "small", "fits", time.Minute))
		v, err := echocache.Get[string](ctx, c, "small")
		require.NoError(t, err, "oversized Sets must not open the breaker for every key")
		assert.Equal(t, "fits", v)
	})
}

// headerCase is a handler that sets hostile or odd response headers.
type headerCase struct {
	name   string
	set    func(h http.Header)
	stored bool // the response must be cached (its headers are all valid)
}

var headerCases = []headerCase{
	{"nok, CRLF and a Set-Cookie in a value", func(h http.Header) {
		h["X-Note"] = []string{"a\r\nSet-Cookie: pwned=1"}
	}, false},
	{"nok, CRLF CRLF and a body in a value", func(h http.Header) {
		h["X-Note"] = []string{"ok", "b\r\n\r\n<script>alert(1)</script>"}
	}, false},
	{"nok, bare LF", func(h http.Header) { h["X-Note"] = []string{"a\nX-Injected: 1"} }, false},
	{"nok, bare CR", func(h http.Header) { h["X-Note"] = []string{"a\rX-Injected: 1"} }, false},
	{"nok, NUL", func(h http.Header) { h["X-Note"] = []string{"a\x00X-Injected: 1"} }, false},
	{"nok, CRLF in a name", func(h http.Header) {
		h["X-Bad\r\nX-Injected"] = []string{"1"}
		h["X-Fine"] = []string{"yes"}
	}, false},
	{"nok, space and colon in names", func(h http.Header) {
		h["X Space"] = []string{"1"}
		h["X:Colon"] = []string{"2"}
	}, false},
	{"ok, odd but valid values", func(h http.Header) {
		h["X-Tab"] = []string{"a\tb"}
		h["X-Latin1"] = []string{"caf\xe9"}
		h["X-Utf8"] = []string{"café ✓"}
		h["X-Padded"] = []string{"  padded  "}
		h["X-Multi"] = []string{"1", "2", "3"}
		h["X-Empty"] = []string{""}
		h["x-lower-case"] = []string{"set on the map directly"}
		h["X-Del"] = []string{"a\x7fb"}
	}, true},
}

// rawGet sends GET path over a fresh connection and returns the response's
// status line and header lines, and its body, as they were on the wire.
func rawGet(t *testing.T, addr, path string) (head []string, body []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: inject.example\r\nConnection: close\r\n\r\n", path)
	require.NoError(t, err)
	all, err := io.ReadAll(conn)
	require.NoError(t, err)
	h, body, ok := bytes.Cut(all, []byte("\r\n\r\n"))
	require.True(t, ok, "no end of header in %q", all)
	return strings.Split(string(h), "\r\n"), body
}

// Header values and names with CR, LF, NUL and other bytes set by a
// handler: no response carries an injected header line or body, and the
// second response (a replay when the first was stored) is byte for byte the
// first on the wire, but for Date, Age, X-Cache, Cache-Status and the ETag
// a hit adds.
func TestAbuseHeaderInjection(t *testing.T) {
	for _, be := range abuseBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			as := be.open(t)
			c := abuseCache(t, as.store)
			e := echo.New()
			e.GET("/h/:case", func(ec echo.Context) error {
				i, err := strconv.Atoi(ec.Param("case"))
				if err != nil || i >= len(headerCases) {
					return echo.ErrNotFound
				}
				headerCases[i].set(ec.Response().Header())
				return ec.String(http.StatusOK, "body of case "+ec.Param("case"))
			}, c.Cached(time.Minute))
			ts := httptest.NewServer(e)
			defer ts.Close()
			addr := strings.TrimPrefix(ts.URL, "http://")

			for i, tt := range headerCases {
				t.Run(tt.name, func(t *testing.T) {
					path := fmt.Sprintf("/h/%d", i)
					wantBody := fmt.Sprintf("body of case %d", i)
					var heads [2][]string
					var status [2]string
					for n := range 2 {
						head, body := rawGet(t, addr, path)
						require.Equal(t, wantBody, string(body), "the body, and nothing injected into it")
						status[n] = head[0]
						for _, line := range head[1:] {
							require.NotContains(t, line, "\r", "a header line with a CR")
							require.NotContains(t, line, "\n", "a header line with an LF")
							name, _, _ := strings.Cut(strings.ToLower(line), ":")
							require.NotContains(t, []string{"set-cookie", "x-injected"}, strings.TrimSpace(name), "an injected header line: %q", line)
							switch name {
							case "date", "age":
								continue
							case "x-cache":
								if n == 1 && tt.stored {
									require.Equal(t, "X-Cache: HIT", line)
								}
								continue
							case "cache-status":
								if n == 1 && tt.stored {
									require.Regexp(t, `^Cache-Status: echocache; hit; ttl=\d+$`, line)
								}
								continue
							case "etag":
								// A hit carries an ETag, the handler's or
								// one from the body hash; a miss only the
								// handler's.
								if n == 1 && tt.stored && !slices.ContainsFunc(heads[0], func(l string) bool {
									return strings.HasPrefix(strings.ToLower(l), "etag:")
								}) {
									require.Regexp(t, `^Etag: "[A-Za-z0-9_-]+"$`, line)
									continue
								}
							}
							heads[n] = append(heads[n], line)
						}
					}
					assert.Equal(t, status[0], status[1])
					assert.Equal(t, heads[0], heads[1], "the second response's header, on the wire, is the first's")
				})
			}
		})
	}
}

package echocache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/internal/syncbuf"
	"github.com/echocache/echocache/stores"
)

// A networked store that fails: every request is served by the handler,
// the errors are counted and logged through Echo's logger, once.
func TestCachedFailOpen(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *mwTestStore)
		cfg   Config
	}{
		{name: "ok, store errors", setup: func(s *mwTestStore) { s.setFail(errMWStoreDown) }},
		{name: "ok, store timeouts", setup: func(s *mwTestStore) { s.block = true }, cfg: Config{StoreTimeout: 20 * time.Millisecond}},
		{name: "ok, reads work, writes fail", setup: func(s *mwTestStore) { s.setFailOn("setmany") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMWTestStore()
			s.local = false
			tt.setup(s)
			tt.cfg.BreakerThreshold = -1
			var logs syncbuf.Buffer
			tt.cfg.Slog = slog.New(slog.NewTextHandler(&logs, nil))
			c, err := NewWithConfig(s, tt.cfg)
			require.NoError(t, err)
			env := newRouteEnv(t, c)
			env.e.GET("/f", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))

			for i := 1; i <= 5; i++ {
				rec := env.do(http.MethodGet, "/f")
				require.Equal(t, http.StatusOK, rec.Code)
				assert.Equal(t, fmt.Sprintf("page /f #%d", i), rec.Body.String())
				assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"))
			}
			st := c.Stats()
			assert.GreaterOrEqual(t, st.StoreErrors, uint64(5))
			assert.Zero(t, st.Hits)
			assert.Equal(t, 1, strings.Count(logs.String(), "echocache: store error"), "one log line, rate-limited: %s", logs.String())
		})
	}
}

// After BreakerThreshold failures the store is no longer called.
func TestCachedBreaker(t *testing.T) {
	s := newMWTestStore()
	s.local = false
	s.setFail(errMWStoreDown)
	c, err := NewWithConfig(s, Config{BreakerThreshold: 3})
	require.NoError(t, err)
	c.core().SetProbeInterval(time.Hour)
	env := newRouteEnv(t, c)
	env.e.GET("/b", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	for range 10 {
		require.Equal(t, http.StatusOK, env.do(http.MethodGet, "/b").Code)
	}
	assert.Equal(t, 3, s.count("get"), "the breaker skipped the store after 3 failures")
	assert.Equal(t, int64(10), env.calls.Load())
}

// A real redis or memcached that is not there: requests are served.
func TestCachedFailOpenDeadServer(t *testing.T) {
	for _, scheme := range []string{"redis", "memcached"} {
		t.Run(scheme, func(t *testing.T) {
			port, err := servertest.FreePort()
			require.NoError(t, err)
			s, err := stores.Open(context.Background(), fmt.Sprintf("%s://127.0.0.1:%d?prefix=dead:", scheme, port))
			require.NoError(t, err)
			defer s.Close()
			c := New(s)
			env := newRouteEnv(t, c)
			env.e.GET("/d", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
			for i := 1; i <= 3; i++ {
				rec := env.do(http.MethodGet, "/d")
				require.Equal(t, http.StatusOK, rec.Code)
				assert.Equal(t, fmt.Sprintf("page /d #%d", i), rec.Body.String())
				assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"))
			}
			assert.NotZero(t, c.Stats().StoreErrors)
		})
	}
}

// A Cache without a store (before Init) runs every request uncached; after
// Init the same middleware caches (Flask-Cache's init_app).
func TestCachedLazyInit(t *testing.T) {
	c := New(nil)
	env := newRouteEnv(t, c)
	env.e.GET("/z", env.textHandler(), c.Cached(time.Minute))
	for range 2 {
		rec := env.do(http.MethodGet, "/z")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Empty(t, rec.Header().Get("X-Cache"))
	}
	assert.Equal(t, uint64(2), c.Stats().Bypasses[BypassNoStore])

	c.Init(openMWStore(t, "memory"))
	env.do(http.MethodGet, "/z")
	rec := env.do(http.MethodGet, "/z")
	assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"))
	assert.Equal(t, "page /z #3", rec.Body.String())
}

// A corrupt entry is a miss and is deleted: garbage, truncation, a flipped
// byte, another format version.
func TestCachedCorruptEntry(t *testing.T) {
	corruptions := []struct {
		name string
		f    func(valid []byte) []byte
		// Only stores whose values are copied in and out (the network, a
		// file) get the checksum verified on a hit; an in-process store that
		// hands out its own bytes (internal/inproc) skips it, see entry.go.
		checksumOnly bool
	}{
		{"nok, garbage", func([]byte) []byte { return []byte("not an entry at all, just bytes") }, false},
		{"nok, empty", func([]byte) []byte { return []byte{} }, false},
		{"nok, truncated", func(v []byte) []byte { return v[:len(v)-7] }, false},
		{"nok, truncated header", func(v []byte) []byte { return v[:20] }, false},
		{"nok, a flipped body byte", func(v []byte) []byte {
			b := bytes.Clone(v)
			b[len(b)-6] ^= 0x20
			return b
		}, true},
		{"nok, another version", func(v []byte) []byte {
			b := bytes.Clone(v)
			b[3] = 99
			return b
		}, false},
		{"nok, bytes appended", func(v []byte) []byte {
			return append(bytes.Clone(v), "more"...)
		}, false},
	}
	run := func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range corruptions {
			t.Run(tt.name, func(t *testing.T) {
				c := open(t)
				if tt.checksumOnly && c.core().Viewer() != nil {
					t.Skip("the store hands out its own bytes; the checksum is not verified on hits")
				}
				env := newRouteEnv(t, c)
				fail := false
				env.e.GET("/c", env.counted(func(c echo.Context) error {
					if fail {
						return errRouteTest
					}
					return c.String(http.StatusOK, "good body")
				}), c.CachedWithConfig(env.cfg(time.Minute)))
				env.do(http.MethodGet, "/c")

				ctx := context.Background()
				pageKey := pagecache.PageKeys(c.core(), "/c", "")[0]
				valid, err := c.core().Get(ctx, pageKey)
				require.NoError(t, err)
				require.NoError(t, c.core().Set(ctx, pageKey, tt.f(valid), time.Minute))

				fail = true // so that nothing is stored again
				rec := env.do(http.MethodGet, "/c")
				assert.Equal(t, http.StatusInternalServerError, rec.Code, "a miss: the handler ran")
				assert.NotContains(t, rec.Body.String(), "good")
				_, err = c.core().Get(ctx, pageKey)
				assert.ErrorIs(t, err, stores.ErrNotFound, "the corrupt entry was deleted")
			})
		}
	}
	forEachMWBackend(t, run)
	t.Run("copying in-process store", func(t *testing.T) {
		run(t, func(t *testing.T) *Cache { return New(newMWTestStore()) })
	})
}

// A valid entry of another request under this request's key (what a store
// that hashes keys would return on a collision) is never served.
func TestCachedForeignEntry(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		env.e.GET("/c", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
		env.e.GET("/zen", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
		env.do(http.MethodGet, "/zen")
		ctx := context.Background()
		foreign, err := c.core().Get(ctx, pagecache.PageKeys(c.core(), "/zen", "")[0])
		require.NoError(t, err)
		// /zen's valid page under /c's key.
		require.NoError(t, c.core().Set(ctx, pagecache.PageKeys(c.core(), "/c", "")[0], foreign, time.Minute))

		rec := env.do(http.MethodGet, "/c")
		assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"))
		assert.Equal(t, "page /c #2", rec.Body.String())
		assert.Equal(t, StatusHit, env.do(http.MethodGet, "/c").Header().Get("X-Cache"), "its own page was stored")
	})
}

// An in-process store that fails (here: closed) is counted and the request
// is served.
func TestCachedClosedMemoryStore(t *testing.T) {
	s := openMWStore(t, "memory")
	c := New(s)
	env := newRouteEnv(t, c)
	env.e.GET("/m", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	require.NoError(t, s.Close())
	rec := env.do(http.MethodGet, "/m")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "page /m #1", rec.Body.String())
	assert.NotZero(t, c.Stats().StoreErrors)
}

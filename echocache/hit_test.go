package echocache

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/stores"
)

func TestCachedHeaders(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		var reqID int
		requestID := func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				reqID++
				c.Response().Header().Set(echo.HeaderXRequestID, "req-"+strconv.Itoa(reqID))
				c.Response().Header().Set("X-Outer", "outer")
				return next(c)
			}
		}
		h := env.counted(func(c echo.Context) error {
			h := c.Response().Header()
			h.Add("Link", "</a.css>; rel=preload")
			h.Add("Link", "</b.js>; rel=preload")
			h.Set("X-Outer", "changed by handler")
			h.Set("X-Handler", "yes")
			h["X-Raw-Case"] = []string{"kept"}
			return c.HTML(http.StatusOK, "<p>hi</p>")
		})
		env.e.GET("/h", h, requestID, c.CachedWithConfig(env.cfg(time.Minute)))

		miss := env.do(http.MethodGet, "/h")
		require.Equal(t, "req-1", miss.Header().Get(echo.HeaderXRequestID))
		hit := env.do(http.MethodGet, "/h")
		require.Equal(t, StatusHit, hit.Header().Get("X-Cache"))

		assert.Equal(t, "req-2", hit.Header().Get(echo.HeaderXRequestID), "ok, the outer middleware's header is not replayed")
		assert.Equal(t, []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}, hit.Header().Values("Link"), "ok, multi-valued header kept")
		assert.Equal(t, "changed by handler", hit.Header().Get("X-Outer"), "ok, a header the handler changed is replayed")
		assert.Equal(t, "yes", hit.Header().Get("X-Handler"))
		assert.Equal(t, []string{"kept"}, hit.Header()["X-Raw-Case"])
		assert.Equal(t, echo.MIMETextHTMLCharsetUTF8, hit.Header().Get(echo.HeaderContentType))
		assert.Equal(t, "<p>hi</p>", hit.Body.String())
	})
}

func TestCachedTTL(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*RouteConfig)
		handler func(c echo.Context) error
		fresh   time.Duration // still a hit just before
	}{
		{name: "ok, route TTL", fresh: 10 * time.Second},
		{
			name: "ok, SetTTL overrides the route TTL",
			handler: func(c echo.Context) error {
				SetTTL(c, 3*time.Second)
				return nil
			},
			fresh: 3 * time.Second,
		},
		{
			name: "ok, SetTTL may lengthen it",
			handler: func(c echo.Context) error {
				SetTTL(c, 30*time.Second)
				return nil
			},
			fresh: 30 * time.Second,
		},
		{
			name: "ok, s-maxage before max-age", cfg: func(c *RouteConfig) { c.TTLFromCacheControl = true },
			handler: func(c echo.Context) error {
				c.Response().Header().Set("Cache-Control", "public, max-age=2, s-maxage=5")
				return nil
			},
			fresh: 5 * time.Second,
		},
		{
			name: "ok, max-age", cfg: func(c *RouteConfig) { c.TTLFromCacheControl = true },
			handler: func(c echo.Context) error {
				c.Response().Header().Set("Cache-Control", "max-age=4")
				return nil
			},
			fresh: 4 * time.Second,
		},
		{
			name: "ok, Cache-Control ignored unless enabled",
			handler: func(c echo.Context) error {
				c.Response().Header().Set("Cache-Control", "max-age=4")
				return nil
			},
			fresh: 10 * time.Second,
		},
		{
			name: "ok, SetTTL before Cache-Control", cfg: func(c *RouteConfig) { c.TTLFromCacheControl = true },
			handler: func(c echo.Context) error {
				c.Response().Header().Set("Cache-Control", "max-age=4")
				SetTTL(c, 6*time.Second)
				return nil
			},
			fresh: 6 * time.Second,
		},
		{
			name: "ok, the Cache's DefaultTTL when the route has none", cfg: func(c *RouteConfig) { c.TTL = 0 },
			fresh: DefaultTTL,
		},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				cfg := env.cfg(10 * time.Second)
				if tt.cfg != nil {
					tt.cfg(&cfg)
				}
				env.e.GET("/t", env.counted(func(c echo.Context) error {
					if tt.handler != nil {
						_ = tt.handler(c)
					}
					return c.String(http.StatusOK, "n="+strconv.FormatInt(env.calls.Load(), 10))
				}), env.c.CachedWithConfig(cfg))

				env.do(http.MethodGet, "/t")
				env.clock.Advance(tt.fresh - time.Second)
				rec := env.do(http.MethodGet, "/t")
				assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"), "1s before the TTL")
				assert.Equal(t, "n=1", rec.Body.String())
				env.clock.Advance(2 * time.Second)
				rec = env.do(http.MethodGet, "/t")
				assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"), "1s after the TTL")
				assert.Equal(t, "n=2", rec.Body.String())
			})
		}
	})
}

func TestCachedNoExpiry(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		env.e.GET("/t", env.textHandler(), c.CachedWithConfig(env.cfg(stores.NoExpiry)))
		env.do(http.MethodGet, "/t")
		env.clock.Advance(24 * 365 * time.Hour)
		rec := env.do(http.MethodGet, "/t")
		assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"))
	})
}

// The real store expiry (not the clock): an entry with a short TTL leaves
// the store.
func TestCachedStoreExpiry(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		env.realClock()
		cfg := env.cfg(time.Second)
		env.e.GET("/t", env.textHandler(), c.CachedWithConfig(cfg))
		env.do(http.MethodGet, "/t")
		require.Eventually(t, func() bool {
			return env.do(http.MethodGet, "/t").Header().Get("X-Cache") == StatusMiss
		}, 5*time.Second, 100*time.Millisecond)
	})
}

// TestCachedMemoEntry covers hits on an in-process store, which decode a
// page once and keep it in the store's memo: every hit serves the stored
// page, a response cannot change the kept entry, and a new page brings a
// new memo.
func TestCachedMemoEntry(t *testing.T) {
	store, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	c := New(store)
	env := newRouteEnv(t, c)
	version := "v1"
	mutate := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			// An outer middleware changing values in place, after the
			// response went out.
			h := c.Response().Header()
			for _, name := range []string{"X-Version", "Link", echo.HeaderContentType} {
				for i := range h[name] {
					h[name][i] = "mutated"
				}
			}
			return err
		}
	}
	env.e.GET("/m", env.counted(func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Version", version)
		h.Add("Link", "</a.css>; rel=preload")
		h.Add("Link", "</b.js>; rel=preload")
		return c.String(http.StatusOK, "page "+version)
	}), mutate, c.CachedWithConfig(env.cfg(time.Minute)))

	miss := env.do(http.MethodGet, "/m")
	require.Equal(t, StatusMiss, miss.Header().Get("X-Cache"))
	key := pagecache.PageKeys(c.core(), "/m", "")[0]
	in, _ := inproc.Lookup(store)
	_, memo, err := in.View(context.Background(), key)
	require.NoError(t, err)
	require.NotNil(t, memo)
	for i := range 3 {
		rec := env.do(http.MethodGet, "/m")
		hit := rec.Result().Header // as sent, before the outer middleware's change
		require.Equal(t, StatusHit, hit.Get("X-Cache"), "hit %d", i)
		assert.Equal(t, "page v1", rec.Body.String(), "hit %d", i)
		assert.Equal(t, "v1", hit.Get("X-Version"), "nok, hit %d replays a value changed in place by an earlier response", i)
		assert.Equal(t, []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}, hit.Values("Link"), "hit %d", i)
		assert.Equal(t, echo.MIMETextPlainCharsetUTF8, hit.Get(echo.HeaderContentType), "hit %d", i)
		assert.NotEmpty(t, hit.Get("ETag"), "hit %d", i)
	}
	require.NotNil(t, memo.Load(), "ok, the first hit keeps the decoded page in the memo")
	assert.Equal(t, int64(1), env.calls.Load())

	version = "v2"
	require.NoError(t, c.DeletePage(context.Background(), "/m"))
	require.Equal(t, StatusMiss, env.do(http.MethodGet, "/m").Header().Get("X-Cache"))
	rec := env.do(http.MethodGet, "/m")
	require.Equal(t, StatusHit, rec.Result().Header.Get("X-Cache"))
	assert.Equal(t, "page v2", rec.Body.String(), "nok, a memo outlived its page")
	assert.Equal(t, "v2", rec.Result().Header.Get("X-Version"))
}

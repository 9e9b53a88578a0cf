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

	"github.com/echocache/echocache/stores"
)

func TestDeletePage(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		h := env.counted(func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderVary, "Accept-Language")
			return c.String(http.StatusOK, "n="+strconv.FormatInt(env.calls.Load(), 10))
		})
		env.e.GET("/p", h, c.CachedWithConfig(env.cfg(time.Minute)))
		env.e.GET("/q", h, c.CachedWithConfig(env.cfg(time.Minute)))
		variants := [][]string{
			{"Host", "a.example", "Accept-Language", "en"},
			{"Host", "a.example", "Accept-Language", "fr"},
			{"Host", "b.example", "Accept-Language", "en"},
		}
		fill := func() {
			for _, v := range variants {
				env.do(http.MethodGet, "/p?x=1&y=2", v...)
			}
			env.do(http.MethodGet, "/p?x=2")
			env.do(http.MethodGet, "/q?x=1")
		}
		status := func(target string, hdr ...string) string {
			return env.do(http.MethodGet, target, hdr...).Header().Get("X-Cache")
		}

		tests := []struct {
			name, target string
		}{
			{"ok, path and query as requested", "/p?x=1&y=2"},
			{"ok, another parameter order", "/p?y=2&x=1"},
			{"ok, with ignored parameters", "/p?x=1&utm_source=mail&y=2"},
			{"ok, an absolute URL", "https://a.example/p?x=1&y=2"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fill()
				for _, v := range variants {
					require.Equal(t, StatusHit, status("/p?x=1&y=2", v...))
				}
				require.NoError(t, c.DeletePage(ctx, tt.target))
				for _, v := range variants {
					assert.Equal(t, StatusMiss, status("/p?x=1&y=2", v...), "ok, every host and Vary variant is gone: %v", v)
				}
				assert.Equal(t, StatusHit, status("/p?x=2"), "nok, another query is kept")
				assert.Equal(t, StatusHit, status("/q?x=1"), "nok, another path is kept")
			})
		}

		for _, bad := range []string{"relative/path", "http://[::1", "%zz"} {
			assert.Error(t, c.DeletePage(ctx, bad), "DeletePage(%q)", bad)
		}
	})
}

func TestDeletePageKeyings(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		drop := env.cfg(time.Minute)
		drop.DropQuery = true
		prefixed := env.cfg(time.Minute)
		prefixed.KeyPrefix = "view/%s"
		custom := env.cfg(time.Minute)
		custom.KeyFunc = func(c echo.Context) string { return "user-" + c.QueryParam("u") }
		env.e.GET("/drop", env.textHandler(), c.CachedWithConfig(drop))
		env.e.GET("/prefixed", env.textHandler(), c.CachedWithConfig(prefixed))
		env.e.GET("/custom", env.textHandler(), c.CachedWithConfig(custom))

		for _, target := range []string{"/drop?a=1", "/prefixed?a=1", "/custom?u=7"} {
			env.do(http.MethodGet, target)
			require.Equal(t, StatusHit, env.do(http.MethodGet, target).Header().Get("X-Cache"), target)
		}
		require.NoError(t, c.DeletePage(ctx, "/drop?whatever=1"))
		require.NoError(t, c.DeletePage(ctx, "/prefixed?a=1"))
		require.NoError(t, c.DeletePageKey(ctx, "user-7"))
		for _, target := range []string{"/drop?a=1", "/prefixed?a=1", "/custom?u=7"} {
			assert.Equal(t, StatusMiss, env.do(http.MethodGet, target).Header().Get("X-Cache"), target)
		}
		assert.Error(t, c.DeletePageKey(ctx, ""))
	})
}

// A process that built no routes (a script) deletes with the default keys.
func TestDeletePageFromScript(t *testing.T) {
	ctx := context.Background()
	forEachSharedMWBackend(t, func(t *testing.T, app, script *Cache) {
		env := newRouteEnv(t, app)
		env.e.GET("/p", env.textHandler(), app.CachedWithConfig(env.cfg(time.Minute)))
		env.do(http.MethodGet, "/p?a=1")
		require.Equal(t, StatusHit, env.do(http.MethodGet, "/p?a=1").Header().Get("X-Cache"))
		require.NoError(t, script.DeletePage(ctx, "http://example.com/p?a=1&utm_campaign=x"))
		if _, local := app.Store().(*stores.LocalTier); local {
			// The app's local tier hears of another process's delete
			// through redis, after it: within the coherence bound, not at
			// once (the p99 bound itself is measured in integration).
			deadline := time.Now().Add(time.Second)
			for env.do(http.MethodGet, "/p?a=1").Header().Get("X-Cache") == StatusHit {
				require.True(t, time.Now().Before(deadline), "the app's tier still serves the page a second after the delete")
			}
			return
		}
		assert.Equal(t, StatusMiss, env.do(http.MethodGet, "/p?a=1").Header().Get("X-Cache"))
	})
}

func TestInvalidateTag(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		tags := map[string][]string{"/a": {"news", "sport"}, "/b": {"news"}, "/c": {"weather"}, "/d": nil}
		h := env.counted(func(c echo.Context) error {
			Tag(c, tags[c.Path()]...)
			return c.String(http.StatusOK, c.Path()+" "+strconv.FormatInt(env.calls.Load(), 10))
		})
		for p := range tags {
			env.e.GET(p, h, c.CachedWithConfig(env.cfg(time.Minute)))
		}
		status := func(p string) string { return env.do(http.MethodGet, p).Header().Get("X-Cache") }
		for p := range tags {
			status(p)
			require.Equal(t, StatusHit, status(p), p)
		}

		require.NoError(t, c.InvalidateTag(ctx, "news"))
		assert.Equal(t, StatusMiss, status("/a"), "ok, tagged news")
		assert.Equal(t, StatusMiss, status("/b"), "ok, tagged news")
		assert.Equal(t, StatusHit, status("/c"), "nok, tagged weather")
		assert.Equal(t, StatusHit, status("/d"), "nok, untagged")
		assert.Equal(t, StatusHit, status("/a"), "ok, stored again with the new version")

		require.NoError(t, c.InvalidateTag(ctx, "sport"))
		assert.Equal(t, StatusMiss, status("/a"))
		assert.Equal(t, StatusHit, status("/b"))
		assert.Error(t, c.InvalidateTag(ctx, ""))
	})
}

// Tag reads the versions when called, so an invalidation that happens while
// the response is being built is not lost.
func TestTagInvalidatedDuringHandler(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		env.e.GET("/r", env.counted(func(ec echo.Context) error {
			Tag(ec, "stock")
			if env.calls.Load() == 1 {
				require.NoError(t, c.InvalidateTag(ctx, "stock")) // the data changes now
			}
			return ec.String(http.StatusOK, "n="+strconv.FormatInt(env.calls.Load(), 10))
		}), c.CachedWithConfig(env.cfg(time.Minute)))
		env.do(http.MethodGet, "/r")
		rec := env.do(http.MethodGet, "/r")
		assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"), "the first response was stored with the old version")
		assert.Equal(t, StatusHit, env.do(http.MethodGet, "/r").Header().Get("X-Cache"))
	})
}

// A tag version that cannot be read: the response is not stored, since
// InvalidateTag could not reach it.
func TestTagStoreError(t *testing.T) {
	s := newMWTestStore()
	s.setFailOn("getmany")
	c := New(s)
	env := newRouteEnv(t, c)
	env.e.GET("/t", env.counted(func(c echo.Context) error {
		Tag(c, "x")
		return c.String(http.StatusOK, "ok")
	}), c.CachedWithConfig(env.cfg(time.Minute)))
	for range 2 {
		rec := env.do(http.MethodGet, "/t")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"))
	}
	assert.Equal(t, uint64(2), c.Stats().Bypasses[BypassTagError])
}

// SetTTL and Tag outside a cached route do nothing.
func TestHelpersOutsideRoutes(t *testing.T) {
	e := echo.New()
	ec := e.NewContext(httptestRequest(), nil)
	assert.NotPanics(t, func() {
		SetTTL(ec, time.Second)
		Tag(ec, "x")
	})
}

func TestClearDropsPages(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		env.e.GET("/p", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
		env.do(http.MethodGet, "/p")
		require.Equal(t, StatusHit, env.do(http.MethodGet, "/p").Header().Get("X-Cache"))
		require.NoError(t, c.Clear(context.Background()))
		assert.Equal(t, StatusMiss, env.do(http.MethodGet, "/p").Header().Get("X-Cache"))
	})
}

package echocache

import (
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/stores"
)

func TestSetTTLNegativeIsNotForever(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		stored bool
	}{
		{"nok, negative ttl is not stored", -5 * time.Second, false},
		{"nok, zero ttl is not stored", 0, false},
		{"ok, NoExpiry is stored", stores.NoExpiry, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/ttl/" + tc.ttl.String()
			env.e.GET(path, env.counted(func(ec echo.Context) error {
				SetTTL(ec, tc.ttl)
				return ec.String(http.StatusOK, "page")
			}), c.CachedWithConfig(env.cfg(time.Minute)))
			env.do(http.MethodGet, path)
			env.clock.Advance(1000 * time.Hour)
			got := env.do(http.MethodGet, path).Header().Get("X-Cache")
			if tc.stored {
				assert.Equal(t, StatusHit, got)
			} else {
				assert.Equal(t, StatusMiss, got)
			}
		})
	}
}

// A background refresh asks for the whole page, whatever conditional or
// range headers the client that found the stale page sent.
func TestRefreshDropsConditionalHeaders(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	refreshed := make(chan http.Header, 1)
	pagecache.HooksOf(c.core()).RefreshDone = func() {}
	h := env.counted(func(ec echo.Context) error {
		if env.calls.Load() == 2 {
			refreshed <- ec.Request().Header.Clone()
		}
		return ec.String(http.StatusOK, "page")
	})
	cfg := env.cfg(10 * time.Second)
	cfg.StaleWhileRevalidate = time.Minute
	env.e.GET("/cond", h, c.CachedWithConfig(cfg))
	env.do(http.MethodGet, "/cond")
	env.clock.Advance(20 * time.Second)
	rec := env.do(http.MethodGet, "/cond", "If-None-Match", `"x"`, "Range", "bytes=0-1", "If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT")
	require.Equal(t, StatusStale, rec.Header().Get("X-Cache"))
	hdr := <-refreshed
	for _, name := range []string{"If-None-Match", "Range", "If-Modified-Since"} {
		assert.Empty(t, hdr.Get(name), "the refresh must not send %s", name)
	}
}

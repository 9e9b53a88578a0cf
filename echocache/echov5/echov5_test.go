package echov5_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/echov5"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/stores"
)

// The middleware's config is an echo.MiddlewareConfigurator.
var _ echo.MiddlewareConfigurator = echov5.RouteConfig{}

func newCache(t *testing.T) *echocache.Cache {
	t.Helper()
	s, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return echocache.New(s)
}

func do(e http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestToMiddlewareErrors(t *testing.T) {
	_, err := echov5.RouteConfig{}.ToMiddleware()
	assert.ErrorContains(t, err, "RouteConfig.Cache is required")
	_, err = echov5.RouteConfig{Cache: newCache(t), TTL: -time.Second}.ToMiddleware()
	assert.ErrorContains(t, err, "RouteConfig.TTL")
	assert.Panics(t, func() { echov5.Cached(nil, time.Minute) })
}

// HEAD is served from the GET's page only where Echo v5 routes HEAD to the
// GET's route: with the router's AutoHandleHEAD, not on a GET-only route
// without it (Echo answers 405, and the cache stays out of it).
func TestHead(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("AutoHandleHEAD=%v", auto), func(t *testing.T) {
			c := newCache(t)
			e := echo.NewWithConfig(echo.Config{Router: echo.NewRouter(echo.RouterConfig{AutoHandleHEAD: auto})})
			calls := 0
			e.GET("/p", func(c *echo.Context) error {
				calls++
				return c.String(http.StatusOK, "page")
			}, echov5.Cached(c, time.Minute))
			require.Equal(t, "MISS", do(e, http.MethodGet, "/p").Header().Get("X-Cache"))
			rec := do(e, http.MethodHead, "/p")
			if !auto {
				assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
				assert.Empty(t, rec.Header().Get("X-Cache"))
				return
			}
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, "HIT", rec.Header().Get("X-Cache"))
			assert.Empty(t, rec.Body.String())
			assert.Equal(t, "4", rec.Header().Get("Content-Length"))
			assert.Equal(t, 1, calls)
		})
	}
}

// Errors are judged as Echo v5's DefaultHTTPErrorHandler judges them: it
// unwraps, so a wrapped echo.ErrNotFound is a 404 answer that goes to the
// client, while an error without a status is a failure the stale page
// replaces.
func TestStaleIfErrorJudgesErrorsLikeEcho(t *testing.T) {
	c := newCache(t)
	now := time.Unix(1_700_000_000, 0)
	pagecache.HooksOf((*core.Cache)(c)).Now = func() time.Time { return now }
	e := echo.New()
	var fail error
	e.GET("/p", func(c *echo.Context) error {
		if fail != nil {
			return fail
		}
		return c.String(http.StatusOK, "page")
	}, echov5.CachedWithConfig(echov5.RouteConfig{Cache: c, TTL: time.Minute, StaleIfError: time.Hour}))
	do(e, http.MethodGet, "/p")
	now = now.Add(2 * time.Minute)

	fail = fmt.Errorf("lookup: %w", echo.ErrNotFound)
	rec := do(e, http.MethodGet, "/p")
	assert.Equal(t, http.StatusNotFound, rec.Code, "nok, a wrapped 404 is an answer, not a failure")

	fail = errors.New("database down")
	rec = do(e, http.MethodGet, "/p")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "STALE", rec.Header().Get("X-Cache"))
	assert.Equal(t, "page", rec.Body.String())

	fail = echo.ErrServiceUnavailable.Wrap(errors.New("busy"))
	rec = do(e, http.MethodGet, "/p")
	assert.Equal(t, "STALE", rec.Header().Get("X-Cache"), "ok, a 503 error is a failure")
}

// A background refresh runs the route with the path values of the request
// that found the page stale.
func TestRefreshKeepsPathValues(t *testing.T) {
	c := newCache(t)
	hooks := pagecache.HooksOf((*core.Cache)(c))
	now := time.Unix(1_700_000_000, 0)
	hooks.Now = func() time.Time { return now }
	refreshed := make(chan struct{}, 1)
	hooks.RefreshDone = func() { refreshed <- struct{}{} }
	e := echo.New()
	n := 0
	e.GET("/u/:id", func(c *echo.Context) error {
		n++
		return c.String(http.StatusOK, fmt.Sprintf("user %s #%d", c.Param("id"), n))
	}, echov5.CachedWithConfig(echov5.RouteConfig{Cache: c, TTL: time.Minute, StaleWhileRevalidate: time.Hour}))
	do(e, http.MethodGet, "/u/7")
	now = now.Add(2 * time.Minute)
	assert.Equal(t, "STALE", do(e, http.MethodGet, "/u/7").Header().Get("X-Cache"))
	<-refreshed
	rec := do(e, http.MethodGet, "/u/7")
	assert.Equal(t, "HIT", rec.Header().Get("X-Cache"))
	assert.Equal(t, "user 7 #2", rec.Body.String())
}

// WithCache hands the cache to handlers and gives it Echo's slog logger:
// a store failure is logged there, at Warn.
func TestWithCacheAndLogger(t *testing.T) {
	s, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	c := echocache.New(s)
	var buf bytes.Buffer
	e := echo.NewWithConfig(echo.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	e.Use(echov5.WithCache(c))
	e.GET("/p", func(ec *echo.Context) error {
		got := echov5.FromContext(ec)
		if got != c {
			return errors.New("FromContext did not return the cache")
		}
		return ec.String(http.StatusOK, "page")
	}, echov5.Cached(c, time.Minute))
	require.NoError(t, s.Close()) // every store call fails from now on
	rec := do(e, http.MethodGet, "/p")
	assert.Equal(t, http.StatusOK, rec.Code, "fail open")
	assert.Equal(t, "page", rec.Body.String())
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), "echocache:")
	assert.Nil(t, echov5.FromContext(e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), nil)))
}

// SetTTL and Tag reach the route through the request's context; a page
// cached here is dropped by the shared Cache's DeletePage and
// InvalidateTag.
func TestSetTTLTagAndInvalidation(t *testing.T) {
	c := newCache(t)
	e := echo.New()
	e.GET("/p", func(ec *echo.Context) error {
		echov5.Tag(ec, "news")
		if ec.QueryParam("nostore") != "" {
			echov5.SetTTL(ec, 0)
		}
		return ec.String(http.StatusOK, "page")
	}, echov5.Cached(c, time.Minute))
	assert.Equal(t, "MISS", do(e, http.MethodGet, "/p?nostore=1").Header().Get("X-Cache"))
	assert.Equal(t, "MISS", do(e, http.MethodGet, "/p?nostore=1").Header().Get("X-Cache"), "SetTTL(0): not stored")
	do(e, http.MethodGet, "/p")
	assert.Equal(t, "HIT", do(e, http.MethodGet, "/p").Header().Get("X-Cache"))
	require.NoError(t, c.InvalidateTag(context.Background(), "news"))
	assert.Equal(t, "MISS", do(e, http.MethodGet, "/p").Header().Get("X-Cache"))
	require.NoError(t, c.DeletePage(context.Background(), "/p"))
	assert.Equal(t, "MISS", do(e, http.MethodGet, "/p").Header().Get("X-Cache"))
	assert.True(t, strings.HasPrefix(do(e, http.MethodGet, "/p").Header().Get("ETag"), `"`))
}

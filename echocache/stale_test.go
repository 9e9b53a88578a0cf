package echocache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/pagecache"
)

func TestCachedStaleWhileRevalidate(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		refreshed := make(chan struct{}, 4)
		pagecache.HooksOf(c.core()).RefreshDone = func() { refreshed <- struct{}{} }
		var block sync.Mutex // held while the refresh must not finish
		h := env.counted(func(c echo.Context) error {
			n := env.calls.Load()
			if n == 2 {
				block.Lock()
				block.Unlock() //nolint:staticcheck // a barrier
			}
			return c.String(http.StatusOK, "v"+strconv.FormatInt(n, 10)+" id="+c.Param("id")+" lang="+c.Request().Header.Get("Accept-Language"))
		})
		cfg := env.cfg(10 * time.Second)
		cfg.StaleWhileRevalidate = 30 * time.Second
		env.e.GET("/swr/:id", h, c.CachedWithConfig(cfg))

		require.Equal(t, "v1 id=7 lang=en", env.do(http.MethodGet, "/swr/7", "Accept-Language", "en").Body.String())
		env.clock.Advance(15 * time.Second)

		block.Lock()
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequest(http.MethodGet, "/swr/7", nil).WithContext(ctx)
		req.Header.Set("Accept-Language", "en")
		rec := httptest.NewRecorder()
		env.e.ServeHTTP(rec, req) // returns while the refresh is blocked
		cancel()                  // the client is gone; the refresh goes on
		assert.Equal(t, StatusStale, rec.Header().Get("X-Cache"))
		assert.Equal(t, "v1 id=7 lang=en", rec.Body.String(), "ok, the stale page at once")
		assert.Equal(t, "15", rec.Header().Get("Age"))
		for range 3 {
			again := env.do(http.MethodGet, "/swr/7", "Accept-Language", "en")
			assert.Equal(t, StatusStale, again.Header().Get("X-Cache"))
		}
		block.Unlock()
		<-refreshed
		assert.Equal(t, int64(2), env.calls.Load(), "ok, one background refresh")

		fresh := env.do(http.MethodGet, "/swr/7", "Accept-Language", "en")
		assert.Equal(t, StatusHit, fresh.Header().Get("X-Cache"))
		assert.Equal(t, "v2 id=7 lang=en", fresh.Body.String(), "ok, the refresh ran on a copy of the request")
		assert.Equal(t, uint64(4), c.Stats().StaleHits)

		env.clock.Advance(45 * time.Second) // past TTL + window
		late := env.do(http.MethodGet, "/swr/7", "Accept-Language", "en")
		assert.Equal(t, StatusMiss, late.Header().Get("X-Cache"), "nok, past the window it is a miss")
		assert.Equal(t, "v3 id=7 lang=en", late.Body.String())
		select {
		case <-refreshed:
			t.Fatal("a miss started a background refresh")
		default:
		}
	})
}

// A refresh whose handler fails (an error, a panic, an answer not
// stored) leaves the stale page in place and is logged: the route suite's
// failed-refreshes, on every front end.

func TestCachedStaleIfError(t *testing.T) {
	tests := []struct {
		name     string
		after    time.Duration // since the page was stored (TTL 10s, window 60s)
		handler  func(c echo.Context) error
		wantCode int
		wantBody string
		wantErr  bool // the error reaches Echo's error handler
		status   string
		maxBody  int64
	}{
		{
			name: "ok, handler error serves the stale page", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return errRouteTest },
			wantCode: 200, wantBody: "v1", status: StatusStale,
		},
		{
			name: "ok, a 503 response serves the stale page", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return c.String(http.StatusServiceUnavailable, "down") },
			wantCode: 200, wantBody: "v1", status: StatusStale,
		},
		{
			name: "ok, a 500 HTTPError serves the stale page", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return echo.NewHTTPError(http.StatusBadGateway) },
			wantCode: 200, wantBody: "v1", status: StatusStale,
		},
		{
			name: "nok, a 404 error is an answer, not a failure", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return echo.ErrNotFound },
			wantCode: 404, wantErr: true, status: StatusMiss,
		},
		{
			name: "ok, echo.ErrServiceUnavailable serves the stale page", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return echo.ErrServiceUnavailable },
			wantCode: 200, wantBody: "v1", status: StatusStale,
		},
		{
			name: "ok, a wrapped 404 is a 500 to Echo, so a failure", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return fmt.Errorf("find page: %w", echo.ErrNotFound) },
			wantCode: 200, wantBody: "v1", status: StatusStale,
		},
		{
			name: "nok, a 500 HTTPError with a 403 inside is a 403 to Echo", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return echo.ErrInternalServerError.WithInternal(echo.ErrForbidden) },
			wantCode: 403, wantErr: true, status: StatusMiss,
		},
		{
			name: "nok, a 404 response is an answer", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return c.String(http.StatusNotFound, "gone") },
			wantCode: 404, wantBody: "gone", status: StatusMiss,
		},
		{
			name: "nok, a panic goes on up the chain", after: 15 * time.Second,
			handler:  func(c echo.Context) error { panic("handler panics") },
			wantCode: 500, wantErr: true, status: StatusMiss,
		},
		{
			name: "nok, past the window the error goes through", after: 75 * time.Second,
			handler:  func(c echo.Context) error { return errRouteTest },
			wantCode: 500, wantErr: true, status: StatusMiss,
		},
		{
			name: "nok, past the window a 503 goes through", after: 75 * time.Second,
			handler:  func(c echo.Context) error { return c.String(http.StatusServiceUnavailable, "down") },
			wantCode: 503, wantBody: "down", status: StatusMiss,
		},
		{
			name: "ok, a good response replaces the page", after: 15 * time.Second,
			handler:  func(c echo.Context) error { return c.String(http.StatusOK, "v2") },
			wantCode: 200, wantBody: "v2", status: StatusMiss,
		},
		{
			name: "ok, a 503 written in pieces is replaced by the stale page", after: 15 * time.Second,
			handler: func(c echo.Context) error {
				c.Response().WriteHeader(http.StatusServiceUnavailable)
				for range 10 {
					_, _ = c.Response().Write([]byte("0123456789"))
				}
				return nil
			},
			wantCode: 200, wantBody: "v1", status: StatusStale,
		},
		{
			name: "nok, a 503 larger than MaxBodySize is not held back", after: 15 * time.Second, maxBody: 50,
			handler: func(c echo.Context) error {
				c.Response().WriteHeader(http.StatusServiceUnavailable)
				for range 10 {
					_, _ = c.Response().Write([]byte("0123456789"))
				}
				return nil
			},
			wantCode: 503, wantBody: strings.Repeat("0123456789", 10), status: StatusMiss,
		},
		{
			name: "nok, a flushed 503 is not held back", after: 15 * time.Second,
			handler: func(c echo.Context) error {
				c.Response().WriteHeader(http.StatusServiceUnavailable)
				_, _ = c.Response().Write([]byte("part"))
				c.Response().Flush()
				return nil
			},
			wantCode: 503, wantBody: "part", status: StatusMiss,
		},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				env.e.Use(middleware.Recover())
				var handled []error
				env.e.HTTPErrorHandler = func(err error, c echo.Context) {
					handled = append(handled, err)
					env.e.DefaultHTTPErrorHandler(err, c)
				}
				cfg := env.cfg(10 * time.Second)
				cfg.StaleIfError = time.Minute
				if tt.maxBody > 0 {
					cfg.MaxBodySize = tt.maxBody
				}
				env.e.GET("/e", env.counted(func(c echo.Context) error {
					c.Response().Header().Set("X-Attempt", strconv.FormatInt(env.calls.Load(), 10))
					if env.calls.Load() == 1 {
						return c.String(http.StatusOK, "v1")
					}
					return tt.handler(c)
				}), env.c.CachedWithConfig(cfg))

				env.do(http.MethodGet, "/e")
				env.clock.Advance(tt.after)
				rec := env.do(http.MethodGet, "/e")
				assert.Equal(t, tt.wantCode, rec.Code)
				if tt.wantBody != "" {
					assert.Equal(t, tt.wantBody, rec.Body.String())
				}
				assert.Equal(t, tt.status, rec.Header().Get("X-Cache"))
				if tt.status == StatusStale {
					assert.Equal(t, "1", rec.Header().Get("X-Attempt"), "the stale page's headers, not the failure's")
				}
				assert.Equal(t, tt.wantErr, len(handled) > 0, "errors handled: %v", handled)
			})
		}
	})
}

// A refresh is judged as a miss is: one whose handler answered after the
// refresh's context ended (RefreshTimeout), turning it into a "no results"
// page, is not stored, and the stale page stays.
func TestCachedStaleWhileRevalidateRefreshTimeout(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	refreshed := make(chan struct{}, 1)
	pagecache.HooksOf(c.core()).RefreshDone = func() { refreshed <- struct{}{} }
	env.e.GET("/p", env.counted(func(c echo.Context) error {
		if env.calls.Load() == 2 {
			<-c.Request().Context().Done() // the refresh's deadline
			return c.String(http.StatusOK, "no results")
		}
		return c.String(http.StatusOK, "v"+strconv.FormatInt(env.calls.Load(), 10))
	}), c.CachedWithConfig(func() RouteConfig {
		cfg := env.cfg(10 * time.Second)
		cfg.StaleWhileRevalidate = time.Minute
		cfg.RefreshTimeout = 20 * time.Millisecond
		return cfg
	}()))
	env.do(http.MethodGet, "/p")
	env.clock.Advance(20 * time.Second)
	assert.Equal(t, StatusStale, env.do(http.MethodGet, "/p").Header().Get("X-Cache"))
	<-refreshed
	rec := env.do(http.MethodGet, "/p")
	assert.Equal(t, StatusStale, rec.Header().Get("X-Cache"), "the refresh that timed out was stored")
	assert.Equal(t, "v1", rec.Body.String())
	<-refreshed
	rec = env.do(http.MethodGet, "/p")
	assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"))
	assert.Equal(t, "v3", rec.Body.String())
}

package echocache

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
)

// An error handed to Echo's HTTPErrorHandler inside the route cache (c.Error,
// which middleware.Recover, Logger, BodyDump and RateLimiter call and then
// return nil) keeps the response out of the store, as the same error
// returned through the cache does: a 404 answer AllowedStatuses would store,
// a page a recovered panic cut short. The app's own error handler, set
// before the first request, still answers the errors.
func TestErrorHandledInsideIsNotStored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inside echo.MiddlewareFunc
		h      func(n int64) echo.HandlerFunc
		body   string
	}{
		{"Logger hands a 404 error to the error handler", middleware.Logger(), func(n int64) echo.HandlerFunc {
			return func(c echo.Context) error {
				if n == 1 {
					return echo.NewHTTPError(http.StatusNotFound, "gone")
				}
				return c.String(http.StatusNotFound, "not here")
			}
		}, "not here"},
		{"Recover hands a panic after the handler wrote", middleware.Recover(), func(n int64) echo.HandlerFunc {
			return func(c echo.Context) error {
				c.Response().WriteHeader(http.StatusNotFound)
				_, _ = c.Response().Write([]byte("part 1;"))
				if n == 1 {
					panic("half-way")
				}
				_, _ = c.Response().Write([]byte("part 2"))
				return nil
			}
		}, "part 1;part 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newRouteEnv(t, newMWCache(t, openMWStore(t, "memory")))
			var handled sync.Map
			env.e.HTTPErrorHandler = func(err error, c echo.Context) {
				handled.Store(c.Request().URL.Path, true)
				env.e.DefaultHTTPErrorHandler(err, c)
			}
			cfg := env.cfg(time.Minute)
			cfg.AllowedStatuses = []int{http.StatusOK, http.StatusNotFound}
			env.e.GET("/p", func(c echo.Context) error {
				return tc.h(env.calls.Add(1))(c)
			}, env.c.CachedWithConfig(cfg), tc.inside)
			first := env.do(http.MethodGet, "/p")
			assert.Equal(t, http.StatusNotFound, first.Code)
			_, ok := handled.Load("/p")
			assert.True(t, ok, "the app's error handler answered the error")
			second := env.do(http.MethodGet, "/p")
			assert.Equal(t, StatusMiss, second.Header().Get("X-Cache"), "the failed response was stored")
			assert.Equal(t, tc.body, second.Body.String())
			third := env.do(http.MethodGet, "/p")
			assert.Equal(t, StatusHit, third.Header().Get("X-Cache"))
			assert.Equal(t, tc.body, third.Body.String())
		})
	}
}

// The error handler is wrapped once per Echo, by the first request through
// a route cache, however many arrive at once; errors on other routes of the
// same Echo meanwhile are answered as before (run with -race).
func TestErrorHandlerWrappedOnce(t *testing.T) {
	env := newRouteEnv(t, newMWCache(t, openMWStore(t, "memory")))
	var handled sync.Map
	env.e.HTTPErrorHandler = func(err error, c echo.Context) {
		n, _ := handled.LoadOrStore(c.Request().URL.Path, new(int64))
		errCountMu.Lock()
		*n.(*int64)++
		errCountMu.Unlock()
		env.e.DefaultHTTPErrorHandler(err, c)
	}
	env.e.GET("/p", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusTeapot)
	}, env.c.CachedWithConfig(env.cfg(time.Minute)), middleware.Logger())
	env.e.GET("/q", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusTeapot)
	}, env.c.CachedWithConfig(env.cfg(time.Minute)))
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			target := "/p"
			if i%2 == 1 {
				target = "/q"
			}
			rec := env.do(http.MethodGet, target)
			assert.Equal(t, http.StatusTeapot, rec.Code)
		})
	}
	wg.Wait()
	for _, path := range []string{"/p", "/q"} {
		v, ok := handled.Load(path)
		if assert.True(t, ok, path) {
			errCountMu.Lock()
			assert.Equal(t, int64(n/2), *v.(*int64), "%s: each error handled once", path)
			errCountMu.Unlock()
		}
	}
}

var errCountMu sync.Mutex

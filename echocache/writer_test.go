package echocache

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newWriterEnv(t *testing.T, h echo.HandlerFunc, mws ...echo.MiddlewareFunc) (*routeEnv, *Cache) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	env.e.GET("/w", env.counted(h), append(mws, c.CachedWithConfig(env.cfg(time.Minute)))...)
	return env, c
}

// Flush and Hijack through the route's writer are tested on every front
// end by the route suite (routetest, writer-flush and writer-hijack). The
// tests below stay Echo v4's: they check what Echo's context holds (its
// Response().Writer, restored after the handler) and Echo's error
// handler.

func TestCaptureWriterUnwrapAndRestore(t *testing.T) {
	var inner, outerAfter http.ResponseWriter
	var outerBefore http.ResponseWriter
	outer := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			outerBefore = c.Response().Writer
			defer func() { outerAfter = c.Response().Writer }()
			return next(c)
		}
	}
	env, _ := newWriterEnv(t, func(c echo.Context) error {
		inner = c.Response().Writer
		return c.String(http.StatusOK, "x")
	}, outer)
	env.do(http.MethodGet, "/w")
	u, ok := inner.(interface{ Unwrap() http.ResponseWriter })
	require.True(t, ok, "the handler sees the capture writer, which unwraps")
	assert.Same(t, outerBefore, u.Unwrap(), "ok, Unwrap gives the writer it wraps")
	assert.Same(t, outerBefore, outerAfter, "ok, the writer is restored after the handler")
}

func TestCachedPanicRestoresAndRepanics(t *testing.T) {
	var before, after http.ResponseWriter
	var recovered any
	outer := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			before = c.Response().Writer
			defer func() {
				after = c.Response().Writer
				recovered = recover()
			}()
			return next(c)
		}
	}
	env, c := newWriterEnv(t, func(c echo.Context) error { panic("boom") }, outer)
	env.do(http.MethodGet, "/w")
	assert.Equal(t, "boom", recovered, "ok, the panic goes on up the chain")
	assert.Same(t, before, after, "ok, the writer is restored")
	assert.Equal(t, uint64(1), c.Stats().Bypasses[BypassPanic])
	assert.Zero(t, c.Stats().Stores)
}

// A handler's error reaches Echo's error handler unchanged.
func TestCachedErrorPropagates(t *testing.T) {
	custom := &echo.HTTPError{Code: http.StatusTeapot, Message: "short and stout", Internal: errRouteTest}
	env, _ := newWriterEnv(t, func(c echo.Context) error { return custom })
	var handled error
	env.e.HTTPErrorHandler = func(err error, c echo.Context) {
		handled = err
		env.e.DefaultHTTPErrorHandler(err, c)
	}
	rec := env.do(http.MethodGet, "/w")
	assert.Same(t, custom, handled)
	assert.True(t, errors.Is(handled, errRouteTest))
	assert.Equal(t, http.StatusTeapot, rec.Code)
}

func httptestRequestTo(target string) *http.Request {
	return httptest.NewRequest(http.MethodGet, target, nil)
}

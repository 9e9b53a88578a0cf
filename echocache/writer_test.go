package echocache

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testResponseWriterNoFlushHijack supports neither Flush nor Hijack.
type testResponseWriterNoFlushHijack struct {
	h http.Header
}

func (w *testResponseWriterNoFlushHijack) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *testResponseWriterNoFlushHijack) WriteHeader(int)             {}
func (w *testResponseWriterNoFlushHijack) Write(b []byte) (int, error) { return len(b), nil }

// testResponseWriterHijack can be hijacked.
type testResponseWriterHijack struct {
	testResponseWriterNoFlushHijack
	hijacked bool
}

func (w *testResponseWriterHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return nil, nil, nil
}

func newWriterEnv(t *testing.T, h echo.HandlerFunc, mws ...echo.MiddlewareFunc) (*routeEnv, *Cache) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	env.e.GET("/w", env.counted(h), append(mws, c.CachedWithConfig(env.cfg(time.Minute)))...)
	return env, c
}

func TestCaptureWriterFlush(t *testing.T) {
	env, c := newWriterEnv(t, func(c echo.Context) error {
		c.Response().WriteHeader(http.StatusOK)
		_, _ = c.Response().Write([]byte("part 1, "))
		c.Response().Flush()
		_, _ = c.Response().Write([]byte("part 2"))
		return nil
	})
	rec := httptest.NewRecorder()
	env.e.ServeHTTP(rec, httptestRequestTo("/w"))
	assert.True(t, rec.Flushed, "ok, Flush reached the client's writer")
	assert.Equal(t, "part 1, part 2", rec.Body.String())
	hit := env.do(http.MethodGet, "/w")
	assert.Equal(t, StatusHit, hit.Header().Get("X-Cache"), "ok, a flushed response is stored whole")
	assert.Equal(t, "part 1, part 2", hit.Body.String())
	assert.Equal(t, uint64(1), c.Stats().Stores)
}

func TestCaptureWriterFlushNotSupported(t *testing.T) {
	env, _ := newWriterEnv(t, func(c echo.Context) error {
		c.Response().Flush()
		return nil
	})
	assert.Panics(t, func() {
		env.e.ServeHTTP(&testResponseWriterNoFlushHijack{}, httptestRequestTo("/w"))
	}, "nok, as echo does when the writer cannot flush")
}

func TestCaptureWriterHijack(t *testing.T) {
	env, c := newWriterEnv(t, func(c echo.Context) error {
		_, _, err := http.NewResponseController(c.Response()).Hijack()
		if err != nil {
			return err
		}
		c.Response().Header().Set("X", "1")
		c.Response().WriteHeader(http.StatusOK)
		return nil
	})
	w := &testResponseWriterHijack{}
	env.e.ServeHTTP(w, httptestRequestTo("/w"))
	assert.True(t, w.hijacked, "ok, Hijack reached the client's writer")
	assert.Equal(t, uint64(1), c.Stats().Bypasses[BypassHijacked], "nok, a hijacked connection is not stored")

	var handled error
	env.e.HTTPErrorHandler = func(err error, c echo.Context) { handled = err }
	env.e.ServeHTTP(&testResponseWriterNoFlushHijack{}, httptestRequestTo("/w"))
	assert.ErrorIs(t, handled, http.ErrNotSupported, "nok, a writer that cannot be hijacked says so")
}

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

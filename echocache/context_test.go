package echocache_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/gommon/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/syncbuf"
)

func TestWithCacheFromContext(t *testing.T) {
	c := newTestCache(t, openStore(t, "memory://"), echocache.Config{})
	e := echo.New()
	var calls int
	handler := func(ec echo.Context) error {
		cache := echocache.FromContext(ec)
		v, err := echocache.GetOrSet(ec.Request().Context(), cache, "answer", time.Minute, func(context.Context) (string, error) {
			calls++
			return "computed", nil
		})
		if err != nil {
			return err
		}
		if cache == nil {
			return ec.String(http.StatusOK, v+" (no cache)")
		}
		return ec.String(http.StatusOK, v)
	}
	e.GET("/with", handler, echocache.WithCache(c))
	e.GET("/without", handler)

	for i, tc := range []struct{ path, body string }{
		{"/with", "computed"},
		{"/with", "computed"},
		{"/without", "computed (no cache)"},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		require.Equal(t, http.StatusOK, rec.Code, "request %d", i)
		assert.Equal(t, tc.body, rec.Body.String(), "request %d", i)
	}
	assert.Equal(t, 2, calls, "one call for the two cached requests, one for the uncached")
	v, err := echocache.Get[string](context.Background(), c, "answer")
	require.NoError(t, err)
	assert.Equal(t, "computed", v, "the handler used the Cache given to WithCache")
}

// With Echo's default settings (its logger at ERROR) and no logger in the
// Config, a store error still reaches the app's log: slog.Default().
func TestStoreErrorLoggedWithDefaults(t *testing.T) {
	var logs syncbuf.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	fs := &failingStore{Store: openStore(t, "memory://")}
	fs.fail.Store(true)
	c, err := echocache.NewWithConfig(fs, echocache.Config{BreakerThreshold: -1})
	require.NoError(t, err)
	e := echo.New()
	e.GET("/", func(ec echo.Context) error {
		_, err := echocache.Get[string](ec.Request().Context(), echocache.FromContext(ec), "k")
		return ec.String(http.StatusOK, err.Error())
	}, echocache.WithCache(c))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, echocache.ErrNotFound.Error(), rec.Body.String(), "fail-open Get")
	assert.Contains(t, logs.String(), "level=WARN msg=\"echocache: store error (serving uncached): "+errBoom.Error(), "store error logged through slog.Default()")
}

// An Echo logger that shows warnings (its level lowered to WARN) gets the
// cache's lines; one at Echo's default level (ERROR) does not, and they go
// to slog.Default() instead.
func TestWithCacheAdoptsEchoLoggerThatShowsWarnings(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })

	for _, tt := range []struct {
		name  string
		level log.Lvl
		echo  bool // the line is in Echo's log, else in slog.Default()'s
	}{
		{"ok, WARN", log.WARN, true},
		{"ok, ERROR (echo.New's)", log.ERROR, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var fallback syncbuf.Buffer
			slog.SetDefault(slog.New(slog.NewTextHandler(&fallback, nil)))
			fs := &failingStore{Store: openStore(t, "memory://")}
			fs.fail.Store(true)
			c, err := echocache.NewWithConfig(fs, echocache.Config{BreakerThreshold: -1})
			require.NoError(t, err)
			e := echo.New()
			var echoLog syncbuf.Buffer
			e.Logger.SetOutput(&echoLog)
			e.Logger.SetLevel(tt.level)
			e.GET("/", func(ec echo.Context) error {
				_, _ = echocache.Get[string](ec.Request().Context(), echocache.FromContext(ec), "k")
				return ec.NoContent(http.StatusOK)
			}, echocache.WithCache(c))
			e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			inEcho, inSlog := strings.Contains(echoLog.String(), errBoom.Error()), strings.Contains(fallback.String(), errBoom.Error())
			if inEcho != tt.echo || inSlog == tt.echo {
				t.Errorf("store error in Echo's log: %v, in slog.Default(): %v; want it in exactly one, Echo's: %v", inEcho, inSlog, tt.echo)
			}
		})
	}
}

// FromContext on a request that did not go through WithCache logs it once,
// not on every request, and not when the request has a Cache.
func TestFromContextWithoutWithCacheLogsOnce(t *testing.T) {
	var logs syncbuf.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	core.ResetWarnNoCache()
	t.Cleanup(core.ResetWarnNoCache)

	c := echocache.New(openStore(t, "memory://"))
	e := echo.New()
	handler := func(ec echo.Context) error {
		_, _ = echocache.Get[string](ec.Request().Context(), echocache.FromContext(ec), "k")
		return ec.NoContent(http.StatusOK)
	}
	e.GET("/with", handler, echocache.WithCache(c))
	e.GET("/without", handler)
	for range 3 {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/with", nil))
	}
	if got := logs.String(); got != "" {
		t.Errorf("requests with WithCache logged %q; want nothing", got)
	}
	for range 3 {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/without", nil))
	}
	if n := strings.Count(logs.String(), "echocache.WithCache(cache)"); n != 1 {
		t.Errorf("three requests without WithCache logged %d lines naming WithCache; want 1:\n%s", n, logs.String())
	}
}

// A nil *Cache (FromContext without WithCache) is safe with the typed API.
func TestNilCache(t *testing.T) {
	ctx := context.Background()
	var c *echocache.Cache
	_, err := echocache.Get[int](ctx, c, "k")
	require.ErrorIs(t, err, echocache.ErrNotFound)
	_, err = echocache.Get[int](ctx, c, "k", echocache.Strict())
	require.ErrorIs(t, err, echocache.ErrNoStore)
	require.NoError(t, echocache.Set(ctx, c, "k", 1, time.Minute))
	require.NoError(t, echocache.SetMany(ctx, c, map[string]int{"k": 1}, time.Minute))
	m, err := echocache.GetMany[int](ctx, c, []string{"k"})
	require.NoError(t, err)
	assert.Empty(t, m)
	v, err := echocache.GetOrSet(ctx, c, "k", time.Minute, func(context.Context) (int, error) { return 7, nil })
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	_, err = echocache.Add(ctx, c, "k", 1, time.Minute)
	require.ErrorIs(t, err, echocache.ErrNoStore)
	require.ErrorIs(t, c.Delete(ctx, "k"), echocache.ErrNoStore)
	require.ErrorIs(t, c.DeleteMany(ctx, "k"), echocache.ErrNoStore)
	_, err = c.Has(ctx, "k")
	require.ErrorIs(t, err, echocache.ErrNoStore)
	_, err = c.Incr(ctx, "k", 1)
	require.ErrorIs(t, err, echocache.ErrNoStore)
}

// A Cache created before its store (Flask's init_app) runs functions
// uncached until Init, then caches them.
func TestTypedBeforeInit(t *testing.T) {
	ctx := context.Background()
	c := echocache.New(nil)
	var cnt counter
	f := echocache.Function(c, "late", time.Minute, func(context.Context) (int64, error) { return cnt.n.Add(1), nil })
	m := echocache.Memoize(c, "late", time.Minute, func(_ context.Context, a int) (int64, error) { return cnt.n.Add(1), nil })
	for range 2 {
		_, err := f.Get(ctx)
		require.NoError(t, err)
		_, err = m.Get(ctx, 1)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(4), cnt.calls(), "uncached before Init")
	strict := echocache.Function(c, "late-strict", time.Minute, func(context.Context) (int64, error) { return cnt.n.Add(1), nil }, echocache.Strict())
	_, err := strict.Get(ctx)
	require.ErrorIs(t, err, echocache.ErrNoStore, "strict call before Init")
	c.Init(openStore(t, "memory://"))
	cnt.n.Store(0)
	for range 2 {
		_, err := f.Get(ctx)
		require.NoError(t, err)
		_, err = m.Get(ctx, 1)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(2), cnt.calls(), "cached after Init")
}

func TestCreationPanics(t *testing.T) {
	c := echocache.New(nil)
	fn := func(context.Context) (int, error) { return 1, nil }
	memo := func(_ context.Context, a string) (int, error) { return 1, nil }
	echocache.Function(c, "dup", time.Minute, fn)
	echocache.Memoize(c, "dup", time.Minute, memo) // another namespace: allowed

	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"nok, Function key used twice", func() { echocache.Function(c, "dup", time.Minute, fn) }},
		{"nok, Memoize name used twice", func() { echocache.Memoize(c, "dup", time.Minute, memo) }},
		{"nok, empty Function key", func() { echocache.Function(c, "", time.Minute, fn) }},
		{"nok, nil function", func() { echocache.Function[int](c, "nil", time.Minute, nil) }},
		{"nok, nil cache", func() { echocache.Function(nil, "x", time.Minute, fn) }},
		{"nok, empty Memoize name", func() { echocache.Memoize(c, "", time.Minute, memo) }},
		{"nok, Memoize name with a colon", func() { echocache.Memoize(c, "a:b", time.Minute, memo) }},
		{"nok, channel argument", func() {
			echocache.Memoize(c, "chan", time.Minute, func(_ context.Context, a chan int) (int, error) { return 1, nil })
		}},
		{"nok, struct with a func behind a pointer", func() {
			type arg struct {
				ID int
				F  *func()
			}
			echocache.Memoize(c, "funcfield", time.Minute, func(_ context.Context, a arg) (int, error) { return 1, nil })
		}},
	} {
		assert.Panics(t, tc.f, tc.name)
	}
	// The same name on another Cache is fine: that is another process's view.
	assert.NotPanics(t, func() { echocache.Memoize(echocache.New(nil), "dup", time.Minute, memo) })
}

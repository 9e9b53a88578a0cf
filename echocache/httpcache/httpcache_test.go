package httpcache_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/httpcache"
	"github.com/echocache/echocache/stores"
)

func serve(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestToMiddlewareErrors(t *testing.T) {
	_, err := httpcache.RouteConfig{}.ToMiddleware()
	assert.ErrorContains(t, err, "RouteConfig.Cache is required")
	_, err = httpcache.RouteConfig{Cache: echocache.New(nil), KeyPrefix: "a", KeyFunc: func(*http.Request) string { return "" }}.ToMiddleware()
	assert.ErrorContains(t, err, "KeyPrefix or KeyFunc")
	assert.Panics(t, func() { httpcache.Cached(nil, time.Minute) })
}

// A handler that panics stores nothing, and the panic goes on up to the
// server.
func TestPanic(t *testing.T) {
	s, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c := echocache.New(s)
	h := httpcache.Cached(c, time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("half"))
		panic(http.ErrAbortHandler)
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(h, "/") })
	assert.Equal(t, uint64(1), c.Stats().Bypasses[echocache.BypassPanic])
	assert.Zero(t, c.Stats().Stores)
}

// Without a Logger in its Config, the cache warns through slog.Default(),
// and WithCache hands it to handlers.
func TestDefaultLoggerAndWithCache(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	s, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	c := echocache.New(s)
	var got *echocache.Cache
	h := httpcache.WithCache(c)(httpcache.Cached(c, time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = httpcache.FromContext(r.Context())
		_, _ = w.Write([]byte("page"))
	})))
	require.NoError(t, s.Close()) // every store call fails from now on
	rec := serve(h, "/")
	assert.Equal(t, "page", rec.Body.String(), "fail open")
	assert.Same(t, c, got)
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), "echocache:")
	assert.Nil(t, httpcache.FromContext(context.Background()))
}

package echov5_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	ecv5 "github.com/echocache/echocache/echocache/echov5"
	pongov5 "github.com/echocache/echocache/pongotag/echov5"
	"github.com/echocache/echocache/stores"
)

func serve(e *echo.Echo, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// A cache block renders once and is served from the cache on the next
// render; the template sees the *echo.Context and the request's cache.
func TestRendererCachesBlocks(t *testing.T) {
	s, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c := echocache.New(s)
	fsys := fstest.MapFS{"zen.html": {Data: []byte(`{% cache 60 "zen" %}{{ n }}{% endcache %} {{ echo.Request().URL.Path }}`)}}
	e := echo.New()
	e.Renderer = pongov5.NewRenderer(fsys, nil)
	e.Use(ecv5.WithCache(c))
	n := 0
	e.GET("/*", func(ec *echo.Context) error {
		n++
		return ec.Render(http.StatusOK, "zen.html", map[string]any{"n": n})
	})
	assert.Equal(t, "1 /a", serve(e, "/a").Body.String())
	assert.Equal(t, "1 /b", serve(e, "/b").Body.String(), "ok, the block came from the request's cache")
	assert.Equal(t, 2, n)
}

// The renderer gives the cache Echo's slog logger: a store failure is
// logged there, and the block renders uncached.
func TestRendererLogsThroughEcho(t *testing.T) {
	s, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	c, err := echocache.NewWithConfig(s, echocache.Config{StoreTimeout: time.Second})
	require.NoError(t, err)
	var buf bytes.Buffer
	e := echo.NewWithConfig(echo.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	r, err := pongov5.NewRendererWithConfig(pongotagConfig(c))
	require.NoError(t, err)
	e.Renderer = r
	e.GET("/", func(ec *echo.Context) error { return ec.Render(http.StatusOK, "t.html", nil) })
	require.NoError(t, s.Close())
	assert.Equal(t, "block", serve(e, "/").Body.String())
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), "echocache:")
}

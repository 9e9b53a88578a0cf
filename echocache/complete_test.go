package echocache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stored page is the whole, final answer a plain request for its key
// gets. These tests give the middleware answers that are not, and check
// that a plain request afterwards runs the handler instead of getting them.

// servedSignal is outer middleware that tells when a request has gone
// through the whole chain, the cache's decision to store included.
func servedSignal(served chan<- struct{}) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			defer func() { served <- struct{}{} }()
			return next(c)
		}
	}
}

// A streamed response whose client goes away: the handler sees its
// context end and returns nil after one chunk. That page must not be
// stored. (Not text/event-stream, which is never stored.)
func TestCachedClientGone(t *testing.T) {
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		env := newRouteEnv(t, open(t))
		served := make(chan struct{}, 4)
		env.e.Use(servedSignal(served))
		env.e.GET("/events", env.counted(func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
			c.Response().WriteHeader(http.StatusOK)
			_, _ = io.WriteString(c.Response(), "data: 1\n\n")
			c.Response().Flush()
			if env.calls.Load() == 1 {
				<-c.Request().Context().Done() // the client went away
				return nil
			}
			_, _ = io.WriteString(c.Response(), "data: 2\n\n")
			return nil
		}), env.c.CachedWithConfig(env.cfg(time.Minute)))
		srv := httptest.NewServer(env.e)
		defer srv.Close()

		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		first := make([]byte, len("data: 1\n\n"))
		_, err = io.ReadFull(resp.Body, first)
		require.NoError(t, err)
		cancel()
		_ = resp.Body.Close()
		<-served

		code, hdr, body := httpGet(t, srv.URL+"/events")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "data: 1\n\ndata: 2\n\n", body, "nok, the cut-short stream was stored")
		assert.Equal(t, StatusMiss, hdr.Get("X-Cache"))
		<-served
		assert.Equal(t, uint64(1), env.c.Stats().Bypasses[BypassContext], "bypasses: %v", env.c.Stats().Bypasses)
		_, hdr, body = httpGet(t, srv.URL+"/events")
		assert.Equal(t, StatusHit, hdr.Get("X-Cache"), "ok, the whole stream is stored")
		assert.Equal(t, "data: 1\n\ndata: 2\n\n", body)
	})
}

func httpGet(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// A handler that turns an ended context into an ordinary answer ("no
// results") must not have that answer stored when the deadline comes from
// middleware inside the cache (Echo's ContextTimeout, on the route); an
// inner ContextTimeout that the handler beat (and that cancels its context
// on the way out) stores the page. A deadline set outside the cache is
// tested on every front end by the route suite (routetest, context-ended);
// these stay here because only Echo's per-route middleware puts one
// inside the cache.
func TestCachedContextEnded(t *testing.T) {
	const short, long = 20 * time.Millisecond, time.Hour
	tests := []struct {
		name       string
		firstWaits bool // the first call waits for its context to end
	}{
		{name: "nok, inner deadline passed", firstWaits: true},
		{name: "ok, inner deadline not reached"},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				h := env.counted(func(c echo.Context) error {
					if tt.firstWaits && env.calls.Load() == 1 {
						<-c.Request().Context().Done()
						return c.String(http.StatusOK, "no results")
					}
					return c.String(http.StatusOK, "results")
				})
				timeout := long
				if tt.firstWaits {
					timeout = short
				}
				env.e.GET("/q", h, env.c.CachedWithConfig(env.cfg(time.Minute)), middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: timeout}))

				first := env.do(http.MethodGet, "/q")
				require.Equal(t, http.StatusOK, first.Code)
				second := env.do(http.MethodGet, "/q")
				if tt.firstWaits {
					assert.Equal(t, "no results", first.Body.String())
					assert.Equal(t, StatusMiss, second.Header().Get("X-Cache"), "nok, the answer after the deadline was stored")
					assert.Equal(t, uint64(1), env.c.Stats().Bypasses[BypassContext], "bypasses: %v", env.c.Stats().Bypasses)
					second = env.do(http.MethodGet, "/q")
				}
				assert.Equal(t, StatusHit, second.Header().Get("X-Cache"))
				assert.Equal(t, "results", second.Body.String())
			})
		}
	})
}

// A request with Range, If-Range or a precondition may get an answer
// shaped by it (206, 304, or a 200 the handler chose by the condition):
// never stored under the plain page key, in any spelling of the header.
func TestCachedConditionalRequests(t *testing.T) {
	tests := []struct {
		name string
		hdr  []string
	}{
		{name: "Range", hdr: []string{"Range", "bytes=0-4"}},
		{name: "If-Range", hdr: []string{"Range", "bytes=0-4", "If-Range", `"v1"`}},
		{name: "If-None-Match", hdr: []string{"If-None-Match", `"v1"`}},
		{name: "If-Modified-Since", hdr: []string{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}},
		{name: "If-Match", hdr: []string{"If-Match", `"v0"`}},
		{name: "If-Unmodified-Since", hdr: []string{"If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}},
		{name: "range set in lower case by middleware", hdr: []string{"X-Lower-Range", "bytes=0-4"}},
	}
	content := "0123456789"
	modTime := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run("nok, "+tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				lower := func(next echo.HandlerFunc) echo.HandlerFunc {
					return func(c echo.Context) error {
						if v := c.Request().Header.Get("X-Lower-Range"); v != "" {
							c.Request().Header["range"] = []string{v}
						}
						return next(c)
					}
				}
				env.e.GET("/c", env.counted(func(c echo.Context) error {
					// A handler that shapes its 200 by the conditions.
					var seen []string
					for k, vs := range c.Request().Header {
						if name := textproto.CanonicalMIMEHeaderKey(k); name == "Range" || strings.HasPrefix(name, "If-") {
							seen = append(seen, name+"="+strings.Join(vs, ","))
						}
					}
					if len(seen) > 0 {
						return c.String(http.StatusOK, "shaped by "+strings.Join(seen, ";"))
					}
					return c.String(http.StatusOK, "plain")
				}), lower, env.c.CachedWithConfig(env.cfg(time.Minute)))

				shaped := env.do(http.MethodGet, "/c", tt.hdr...)
				require.Contains(t, shaped.Body.String(), "shaped by")
				plain := env.do(http.MethodGet, "/c")
				assert.Equal(t, "plain", plain.Body.String(), "nok, the answer to a conditional request was stored")
				assert.Equal(t, StatusMiss, plain.Header().Get("X-Cache"))
				assert.Equal(t, uint64(1), env.c.Stats().Bypasses[BypassConditional], "bypasses: %v", env.c.Stats().Bypasses)

				// Once the plain page is stored, the same request is
				// answered from it: the whole page for Range (RFC 9110,
				// 14.2 lets a server ignore it).
				again := env.do(http.MethodGet, "/c", tt.hdr...)
				assert.Equal(t, StatusHit, again.Header().Get("X-Cache"))
				assert.Equal(t, int64(2), env.calls.Load())
			})
		}

		t.Run("nok, http.ServeContent's 206 and 304", func(t *testing.T) {
			env := newRouteEnv(t, open(t))
			env.e.GET("/f", env.counted(func(c echo.Context) error {
				c.Response().Header().Set("ETag", `"v1"`)
				http.ServeContent(c.Response(), c.Request(), "f.txt", modTime, strings.NewReader(content))
				return nil
			}), env.c.CachedWithConfig(env.cfg(time.Minute)))
			partial := env.do(http.MethodGet, "/f", "Range", "bytes=0-4")
			require.Equal(t, http.StatusPartialContent, partial.Code)
			require.Equal(t, "01234", partial.Body.String())
			notModified := env.do(http.MethodGet, "/f", "If-None-Match", `"v1"`)
			require.Equal(t, http.StatusNotModified, notModified.Code)
			plain := env.do(http.MethodGet, "/f")
			assert.Equal(t, http.StatusOK, plain.Code)
			assert.Equal(t, content, plain.Body.String())
			assert.Equal(t, StatusMiss, plain.Header().Get("X-Cache"))
			hit := env.do(http.MethodGet, "/f", "If-None-Match", `"v1"`)
			assert.Equal(t, http.StatusNotModified, hit.Code, "ok, the stored page answers If-None-Match")
			assert.Equal(t, StatusHit, hit.Header().Get("X-Cache"))
		})
	})
}

// A GET with content may be answered by what it carries, which is not in
// the key: it neither reads nor fills the cache.
func TestCachedGETWithBody(t *testing.T) {
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		env := newRouteEnv(t, open(t))
		env.e.GET("/search", env.counted(func(c echo.Context) error {
			q, _ := io.ReadAll(c.Request().Body)
			return c.String(http.StatusOK, fmt.Sprintf("results for %q", q))
		}), env.c.CachedWithConfig(env.cfg(time.Minute)))
		withBody := func(q string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			env.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/search", strings.NewReader(q)))
			return rec
		}
		assert.Equal(t, `results for "cats"`, withBody("cats").Body.String())
		plain := env.do(http.MethodGet, "/search")
		assert.Equal(t, `results for ""`, plain.Body.String(), "nok, the answer to a GET with content was stored")
		assert.Equal(t, StatusMiss, plain.Header().Get("X-Cache"))
		assert.Equal(t, `results for "dogs"`, withBody("dogs").Body.String(), "nok, a GET with content got the stored page")
		assert.Equal(t, uint64(2), env.c.Stats().Bypasses[BypassBody], "bypasses: %v", env.c.Stats().Bypasses)
	})
}

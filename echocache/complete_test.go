package echocache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
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
// results") must not have that answer stored, whether the deadline comes
// from outer or inner middleware; an inner ContextTimeout that the handler
// beat (and that cancels its context on the way out) stores the page.
func TestCachedContextEnded(t *testing.T) {
	// Inside the cache, Echo's ContextTimeout bounds the handler only, so a
	// short one ends while the handler waits. Outside it, a deadline would
	// also bound the store calls, and one that a loaded store's lookup
	// outlasts would test the lookup's failure instead: the first request
	// gets a deadline that passes when its handler starts.
	const short, long = 20 * time.Millisecond, time.Hour
	tests := []struct {
		name       string
		outer      bool // the deadline is set outside the cache, else inside it
		firstWaits bool // the first call waits for its context to end
	}{
		{name: "nok, outer deadline passed", outer: true, firstWaits: true},
		{name: "nok, inner deadline passed", firstWaits: true},
		{name: "ok, inner deadline not reached"},
		{name: "ok, outer deadline not reached", outer: true},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				var pass func() // ends the first request's outer deadline
				h := env.counted(func(c echo.Context) error {
					if tt.firstWaits && env.calls.Load() == 1 {
						if pass != nil {
							pass()
						}
						<-c.Request().Context().Done()
						return c.String(http.StatusOK, "no results")
					}
					return c.String(http.StatusOK, "results")
				})
				cached := env.c.CachedWithConfig(env.cfg(time.Minute))
				var mws []echo.MiddlewareFunc
				if tt.outer {
					first := tt.firstWaits
					outer := func(next echo.HandlerFunc) echo.HandlerFunc {
						return func(c echo.Context) error {
							if !first {
								return next(c)
							}
							first = false
							ctx := &deadlineCtx{Context: c.Request().Context(), done: make(chan struct{})}
							pass = ctx.pass
							c.SetRequest(c.Request().WithContext(ctx))
							return next(c)
						}
					}
					mws = []echo.MiddlewareFunc{outer, cached}
				} else {
					timeout := long
					if tt.firstWaits {
						timeout = short
					}
					mws = []echo.MiddlewareFunc{cached, middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: timeout})}
				}
				env.e.GET("/q", h, mws...)

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

// deadlineCtx is a request context whose deadline passes when pass is
// called: Done closes and Err reports context.DeadlineExceeded, as for a
// deadline set with context.WithTimeout, at a moment the test chooses.
type deadlineCtx struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func (c *deadlineCtx) pass()                 { c.once.Do(func() { close(c.done) }) }
func (c *deadlineCtx) Done() <-chan struct{} { return c.done }

func (c *deadlineCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
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

// Header names in any case are seen by every rule, on the response (a
// handler assigning the map directly) and on the request (middleware
// doing the same).
func TestCachedHeaderNamesInAnyCase(t *testing.T) {
	setRaw := func(name string, values ...string) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header()[name] = values
			return c.String(http.StatusOK, "body")
		}
	}
	// lowerRequest copies X-Lower-<Name> request headers to <name> in
	// lower case, as middleware assigning the map would.
	lowerRequest := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Request().Header
			for k, vs := range h {
				if name, ok := strings.CutPrefix(k, "X-Lower-"); ok {
					h[strings.ToLower(name)] = vs
				}
			}
			return next(c)
		}
	}
	// rawRequest answers with the request's headers of one name, in
	// every spelling.
	rawRequest := func(name string) echo.HandlerFunc {
		return func(c echo.Context) error {
			var vs []string
			for k, v := range c.Request().Header {
				if strings.EqualFold(k, name) {
					vs = append(vs, v...)
				}
			}
			return c.String(http.StatusOK, name+"="+strings.Join(vs, ","))
		}
	}
	tests := []struct {
		name    string
		cfg     func(*RouteConfig)
		handler echo.HandlerFunc
		first   []string     // headers of the first request
		second  []string     // and of the second
		reason  BypassReason // the bypass counted, if the first is not stored
		times   uint64       // how many times (default 2: both requests)
	}{
		{name: "response set-cookie", handler: setRaw("set-cookie", "sid=secret"), reason: BypassSetCookie},
		{name: "response cache-control private", handler: setRaw("cache-control", "private"), reason: BypassCacheControl},
		{name: "response cache-control no-store", handler: setRaw("CACHE-CONTROL", "no-store"), reason: BypassCacheControl},
		{name: "response vary *", handler: setRaw("vary", "*"), reason: BypassVary},
		{
			name: "response vary Cookie", handler: setRaw("vary", "Cookie"),
			first: []string{"Cookie", "sid=a"}, second: []string{"Cookie", "sid=b"},
		},
		{name: "response content-length", handler: setRaw("content-length", "999"), reason: BypassLength},
		{name: "response trailer", handler: setRaw("trailer", "X-Checksum"), reason: BypassTrailer},
		{name: "response content-type event stream", handler: setRaw("content-type", "text/event-stream"), reason: BypassEventStream},
		{
			name: "request authorization", handler: rawRequest("Authorization"),
			first: []string{"X-Lower-Authorization", "Bearer a"}, reason: BypassAuthorization, times: 1,
		},
		{
			name: "request accept-language in VaryHeaders", handler: rawRequest("Accept-Language"),
			cfg:   func(c *RouteConfig) { c.VaryHeaders = []string{"Accept-Language"} },
			first: []string{"X-Lower-Accept-Language", "fr"}, reason: BypassHeaderCase, times: 1,
		},
		{
			name: "request cookie named by the response's Vary",
			handler: func(c echo.Context) error {
				c.Response().Header().Set("Vary", "Cookie")
				return rawRequest("Cookie")(c)
			},
			first: []string{"X-Lower-Cookie", "sid=a"}, reason: BypassHeaderCase, times: 1,
		},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run("nok, "+tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				cfg := env.cfg(time.Minute)
				if tt.cfg != nil {
					tt.cfg(&cfg)
				}
				env.e.GET("/n", env.counted(tt.handler), lowerRequest, env.c.CachedWithConfig(cfg))
				env.do(http.MethodGet, "/n", tt.first...)
				second := env.do(http.MethodGet, "/n", tt.second...)
				assert.Equal(t, StatusMiss, second.Header().Get("X-Cache"), "nok, the first answer was shared")
				assert.Equal(t, int64(2), env.calls.Load())
				if tt.reason != "" {
					times := tt.times
					if times == 0 {
						times = 2
					}
					assert.Equal(t, times, env.c.Stats().Bypasses[tt.reason], "bypasses: %v", env.c.Stats().Bypasses)
				}
				assert.Empty(t, second.Header().Values("Set-Cookie"))
			})
		}
	})
}

// The Content-Length a handler declares must be the length of the body it
// wrote: net/http cuts the connection on a short body and refuses a long
// one, so neither is what a client gets.
func TestCachedDeclaredLength(t *testing.T) {
	tests := []struct {
		name     string
		declared string
		stored   bool
	}{
		{name: "ok, the length written", declared: "5", stored: true},
		{name: "nok, longer than written", declared: "10"},
		{name: "nok, shorter than written", declared: "3"},
		{name: "nok, not a number", declared: "five"},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				env.e.GET("/l", env.counted(func(c echo.Context) error {
					c.Response().Header().Set(echo.HeaderContentLength, tt.declared)
					return c.String(http.StatusOK, "hello")
				}), env.c.CachedWithConfig(env.cfg(time.Minute)))
				env.do(http.MethodGet, "/l")
				second := env.do(http.MethodGet, "/l")
				if tt.stored {
					assert.Equal(t, StatusHit, second.Header().Get("X-Cache"))
					assert.Equal(t, "hello", second.Body.String())
					return
				}
				assert.Equal(t, StatusMiss, second.Header().Get("X-Cache"))
				assert.Equal(t, uint64(2), env.c.Stats().Bypasses[BypassLength], "bypasses: %v", env.c.Stats().Bypasses)
			})
		}
	})
}

// A handler that panics or returns an error after writing part of its page
// has its response go out as it is, and nothing stored.
func TestCachedFailureAfterWriting(t *testing.T) {
	tests := []struct {
		name   string
		fail   func() error
		reason BypassReason
	}{
		{name: "nok, a panic behind Recover", fail: func() error { panic("after writing") }, reason: BypassPanic},
		{name: "nok, an error", fail: func() error { return errRouteTest }, reason: BypassError},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				env.e.Use(middleware.Recover())
				env.e.GET("/p", env.counted(func(c echo.Context) error {
					c.Response().WriteHeader(http.StatusOK)
					_, _ = io.WriteString(c.Response(), "part 1;")
					if env.calls.Load() == 1 {
						return tt.fail()
					}
					_, _ = io.WriteString(c.Response(), "part 2")
					return nil
				}), env.c.CachedWithConfig(env.cfg(time.Minute)))
				assert.Equal(t, "part 1;", env.do(http.MethodGet, "/p").Body.String())
				plain := env.do(http.MethodGet, "/p")
				assert.Equal(t, StatusMiss, plain.Header().Get("X-Cache"))
				assert.Equal(t, "part 1;part 2", plain.Body.String())
				assert.Equal(t, uint64(1), env.c.Stats().Bypasses[tt.reason], "bypasses: %v", env.c.Stats().Bypasses)
			})
		}
	})
}

// Trailers are sent after the body and are not stored, so a page with
// trailers is not stored either.
func TestCachedTrailers(t *testing.T) {
	tests := []struct {
		name string
		set  func(h http.Header)
	}{
		{name: "nok, declared in Trailer", set: func(h http.Header) { h.Set("Trailer", "X-Checksum") }},
		{name: "nok, set with http.TrailerPrefix"},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				env.e.GET("/t", env.counted(func(c echo.Context) error {
					h := c.Response().Header()
					if tt.set != nil {
						tt.set(h)
					}
					if err := c.String(http.StatusOK, "body"); err != nil {
						return err
					}
					if tt.set != nil {
						h.Set("X-Checksum", "abc")
					} else {
						c.Response().Flush() // chunked, so that trailers can follow
						h.Set(http.TrailerPrefix+"X-Checksum", "abc")
					}
					return nil
				}), env.c.CachedWithConfig(env.cfg(time.Minute)))
				srv := httptest.NewServer(env.e)
				defer srv.Close()
				for range 2 {
					resp, err := http.Get(srv.URL + "/t")
					require.NoError(t, err)
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					assert.Equal(t, "abc", resp.Trailer.Get("X-Checksum"), "the client gets the trailer")
					assert.Equal(t, StatusMiss, resp.Header.Get("X-Cache"))
				}
				assert.Equal(t, uint64(2), env.c.Stats().Bypasses[BypassTrailer], "bypasses: %v", env.c.Stats().Bypasses)
			})
		}
	})
}

// An informational response (103 Early Hints) before the final one: the
// final response is the page.
func TestCachedInformational(t *testing.T) {
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		env := newRouteEnv(t, open(t))
		env.e.GET("/hints", env.counted(func(c echo.Context) error {
			c.Response().Header().Set("Link", "</app.css>; rel=preload")
			c.Response().Writer.WriteHeader(http.StatusEarlyHints)
			return c.String(http.StatusOK, "hinted")
		}), env.c.CachedWithConfig(env.cfg(time.Minute)))
		srv := httptest.NewServer(env.e)
		defer srv.Close()

		var hints []int
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			hints = append(hints, code)
			return nil
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, srv.URL+"/hints", nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, []int{http.StatusEarlyHints}, hints, "the hints reached the client")
		require.Equal(t, http.StatusOK, resp.StatusCode)

		code, hdr, body := httpGet(t, srv.URL+"/hints")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, StatusHit, hdr.Get("X-Cache"), "ok, the final response is stored")
		assert.Equal(t, "hinted", body)
		assert.Equal(t, "</app.css>; rel=preload", hdr.Get("Link"))
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

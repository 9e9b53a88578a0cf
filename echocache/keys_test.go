package echocache

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type routeReq struct {
	method, target string
	hdr            []string
}

func get(target string, hdr ...string) routeReq { return routeReq{http.MethodGet, target, hdr} }

func TestCachedKeys(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*RouteConfig)
		vary   string // Vary header the handler sets
		a, b   routeReq
		shared bool
	}{
		{name: "ok, same URL", a: get("/p?a=1"), b: get("/p?a=1"), shared: true},
		{name: "ok, query order does not matter", a: get("/p?a=1&b=2"), b: get("/p?b=2&a=1"), shared: true},
		{name: "ok, equivalent encodings", a: get("/p?a=%61&q=x+y"), b: get("/p?a=a&q=x%20y"), shared: true},
		{name: "ok, utm_* and click ids are ignored", a: get("/p?a=1"), b: get("/p?utm_source=x&a=1&fbclid=y&utm_medium=z"), shared: true},
		{name: "nok, another query value", a: get("/p?a=1"), b: get("/p?a=2")},
		{name: "nok, a query vs none", a: get("/p"), b: get("/p?a=1")},
		{name: "nok, repeated values in another order", a: get("/p?a=1&a=2"), b: get("/p?a=2&a=1")},
		{name: "nok, another path", a: get("/p"), b: get("/q")},
		{name: "nok, escaped slash is another path", a: get("/a%2Fb"), b: get("/a/b")},
		{name: "nok, another host", a: get("/p", "Host", "a.example"), b: get("/p", "Host", "b.example")},
		{name: "ok, host is case-insensitive", a: get("/p", "Host", "Example.COM"), b: get("/p", "Host", "example.com"), shared: true},
		{name: "nok, another scheme", a: get("/p"), b: get("/p", "X-Forwarded-Proto", "https", "RemoteAddr", "127.0.0.1:4000")},
		{name: "nok, undecodable query stays apart from its decoded look-alike", a: get("/p?a=%zz"), b: get("/p?a=%25zz")},
		{
			name: "nok, an empty ignore list keeps utm parameters",
			cfg:  func(c *RouteConfig) { c.IgnoreQueryParams = []string{} },
			a:    get("/p?utm_source=1"), b: get("/p?utm_source=2"),
		},
		{
			name: "ok, DropQuery ignores the query (Flask-Cache's behaviour)",
			cfg:  func(c *RouteConfig) { c.DropQuery = true },
			a:    get("/p?a=1"), b: get("/p?a=2"), shared: true,
		},
		{
			name: "ok, KeyPrefix without %s shares one page across paths",
			cfg:  func(c *RouteConfig) { c.KeyPrefix = "zen" },
			a:    get("/p"), b: get("/q"), shared: true,
		},
		{
			name: "nok, KeyPrefix with %s keeps paths apart",
			cfg:  func(c *RouteConfig) { c.KeyPrefix = "view/%s" },
			a:    get("/p"), b: get("/q"),
		},
		{
			name: "ok, KeyPrefix with %s, same path",
			cfg:  func(c *RouteConfig) { c.KeyPrefix = "view/%s" },
			a:    get("/p?x=1"), b: get("/p?x=1"), shared: true,
		},
		{
			name: "ok, KeyFunc decides",
			cfg:  func(c *RouteConfig) { c.KeyFunc = func(c echo.Context) string { return c.QueryParam("id") } },
			a:    get("/p?id=7&x=1"), b: get("/q?id=7&x=2", "Host", "other.example"), shared: true,
		},
		{
			name: "nok, KeyFunc gives another key",
			cfg:  func(c *RouteConfig) { c.KeyFunc = func(c echo.Context) string { return c.QueryParam("id") } },
			a:    get("/p?id=7"), b: get("/p?id=8"),
		},
		{
			name: "nok, configured vary header differs",
			cfg:  func(c *RouteConfig) { c.VaryHeaders = []string{"accept-language"} },
			a:    get("/p", "Accept-Language", "en"), b: get("/p", "Accept-Language", "fr"),
		},
		{
			name: "ok, configured vary header equal",
			cfg:  func(c *RouteConfig) { c.VaryHeaders = []string{"Accept-Language"} },
			a:    get("/p", "Accept-Language", "en"), b: get("/p", "Accept-Language", "en"), shared: true,
		},
		{
			name: "nok, configured vary header absent vs empty",
			cfg:  func(c *RouteConfig) { c.VaryHeaders = []string{"Accept-Language"} },
			a:    get("/p"), b: get("/p", "Accept-Language", ""),
		},
		{
			name: "nok, the response's Vary is honoured",
			vary: "Accept-Encoding",
			a:    get("/p", "Accept-Encoding", "gzip"), b: get("/p", "Accept-Encoding", "br"),
		},
		{
			name: "ok, the response's Vary with the same value",
			vary: "Accept-Encoding, X-Tenant",
			a:    get("/p", "Accept-Encoding", "gzip", "X-Tenant", "a"), b: get("/p", "Accept-Encoding", "gzip", "X-Tenant", "a"), shared: true,
		},
		{
			name: "nok, the response's Vary, second header differs",
			vary: "Accept-Encoding, X-Tenant",
			a:    get("/p", "Accept-Encoding", "gzip", "X-Tenant", "a"), b: get("/p", "Accept-Encoding", "gzip", "X-Tenant", "b"),
		},
		{
			name: "ok, HEAD shares the GET entry",
			a:    get("/p"), b: routeReq{method: http.MethodHead, target: "/p"}, shared: true,
		},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				cfg := env.cfg(time.Minute)
				if tt.cfg != nil {
					tt.cfg(&cfg)
				}
				h := env.counted(func(c echo.Context) error {
					if tt.vary != "" {
						c.Response().Header().Set(echo.HeaderVary, tt.vary)
					}
					return c.String(http.StatusOK, "call "+strconv.FormatInt(env.calls.Load(), 10))
				})
				env.e.Match([]string{http.MethodGet, http.MethodHead}, "/*", h, env.c.CachedWithConfig(cfg))

				ra := env.do(tt.a.method, tt.a.target, tt.a.hdr...)
				require.Equal(t, http.StatusOK, ra.Code)
				require.Equal(t, StatusMiss, ra.Header().Get("X-Cache"))
				rb := env.do(tt.b.method, tt.b.target, tt.b.hdr...)
				require.Equal(t, http.StatusOK, rb.Code)
				if !tt.shared {
					assert.Equal(t, StatusMiss, rb.Header().Get("X-Cache"))
					assert.Equal(t, "call 2", rb.Body.String())
					assert.Equal(t, int64(2), env.calls.Load())
					return
				}
				assert.Equal(t, StatusHit, rb.Header().Get("X-Cache"))
				assert.Equal(t, int64(1), env.calls.Load())
				if tt.b.method == http.MethodHead {
					assert.Empty(t, rb.Body.String(), "HEAD gets no body")
					assert.Equal(t, strconv.Itoa(len("call 1")), rb.Header().Get(echo.HeaderContentLength))
				} else {
					assert.Equal(t, "call 1", rb.Body.String())
				}
			})
		}
	})
}

// Two variants of one page are stored side by side: alternating requests
// do not evict each other.
func TestCachedVariantsCoexist(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		h := env.counted(func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderVary, "Accept-Language")
			return c.String(http.StatusOK, c.Request().Header.Get("Accept-Language")+" "+strconv.FormatInt(env.calls.Load(), 10))
		})
		env.e.GET("/p", h, c.CachedWithConfig(env.cfg(time.Minute)))
		for _, host := range []string{"a.example", "b.example"} {
			for _, lang := range []string{"en", "fr"} {
				env.do(http.MethodGet, "/p", "Host", host, "Accept-Language", lang)
			}
		}
		require.Equal(t, int64(4), env.calls.Load())
		for i, host := range []string{"a.example", "b.example"} {
			for j, lang := range []string{"en", "fr"} {
				rec := env.do(http.MethodGet, "/p", "Host", host, "Accept-Language", lang)
				assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"), "%s %s", host, lang)
				assert.Equal(t, lang+" "+strconv.Itoa(i*2+j+1), rec.Body.String())
			}
		}
		assert.Equal(t, int64(4), env.calls.Load())
	})
}

// Hosts without any Vary: each host's page is stored and found again.
func TestCachedHostsCoexist(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		env.e.GET("/p", env.counted(func(c echo.Context) error {
			return c.String(http.StatusOK, c.Request().Host)
		}), c.CachedWithConfig(env.cfg(time.Minute)))
		hosts := []string{"a.example", "b.example", "c.example"}
		for _, h := range hosts {
			env.do(http.MethodGet, "/p", "Host", h)
		}
		for _, h := range hosts {
			rec := env.do(http.MethodGet, "/p", "Host", h)
			assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"), h)
			assert.Equal(t, h, rec.Body.String())
		}
		assert.Equal(t, int64(len(hosts)), env.calls.Load())
	})
}

// A custom SchemeExtractor that answers in upper case still finds its pages.
func TestCachedSchemeExtractorCase(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	env.e.SchemeExtractor = func(*http.Request) string { return "HTTPS" }
	env.e.GET("/p", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	env.do(http.MethodGet, "/p", "X-Forwarded-Proto", "https")
	assert.Equal(t, StatusHit, env.do(http.MethodGet, "/p", "X-Forwarded-Proto", "https").Header().Get("X-Cache"))
}

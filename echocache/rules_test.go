package echocache

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCachedStoreRules checks, for every rule of what is stored and what is
// not, that a second identical request is a hit or runs the handler again.
func TestCachedStoreRules(t *testing.T) {
	big := strings.Repeat("x", 100)
	text := func(code int, body string) echo.HandlerFunc {
		return func(c echo.Context) error { return c.String(code, body) }
	}
	withHeader := func(name, value string) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set(name, value)
			return c.String(http.StatusOK, "body")
		}
	}
	tests := []struct {
		name     string
		cfg      func(*RouteConfig)
		outer    echo.MiddlewareFunc
		method   string
		hdr      []string
		handler  echo.HandlerFunc
		wantCode int
		wantBody string
		stored   bool
		reason   BypassReason // bypass reason counted when not stored
	}{
		{name: "ok, GET 200", handler: text(200, "body"), stored: true},
		{name: "nok, POST", method: http.MethodPost, handler: text(200, "body"), reason: BypassMethod},
		{name: "nok, PUT", method: http.MethodPut, handler: text(200, "body"), reason: BypassMethod},
		{name: "nok, DELETE", method: http.MethodDelete, handler: text(200, "body"), reason: BypassMethod},
		{name: "nok, status 404 by default", handler: text(404, "gone"), wantCode: 404, wantBody: "gone", reason: BypassStatus},
		{name: "nok, status 500", handler: text(500, "boom"), wantCode: 500, wantBody: "boom", reason: BypassStatus},
		{name: "nok, status 201", handler: text(201, "made"), wantCode: 201, wantBody: "made", reason: BypassStatus},
		{
			name: "ok, status 404 when allowed", cfg: func(c *RouteConfig) { c.AllowedStatuses = []int{200, 404} },
			handler: text(404, "gone"), wantCode: 404, wantBody: "gone", stored: true,
		},
		{
			name: "nok, Set-Cookie",
			handler: func(c echo.Context) error {
				c.SetCookie(&http.Cookie{Name: "session", Value: "secret"})
				return c.String(http.StatusOK, "body")
			},
			reason: BypassSetCookie,
		},
		{
			name: "nok, Set-Cookie set by outer middleware",
			outer: func(next echo.HandlerFunc) echo.HandlerFunc {
				return func(c echo.Context) error {
					c.SetCookie(&http.Cookie{Name: "session", Value: "secret"})
					return next(c)
				}
			},
			handler: text(200, "body"), reason: BypassSetCookie,
		},
		{name: "nok, Cache-Control no-store", handler: withHeader("Cache-Control", "no-store"), reason: BypassCacheControl},
		{name: "nok, Cache-Control private", handler: withHeader("Cache-Control", "max-age=60, private"), reason: BypassCacheControl},
		{name: "nok, Cache-Control private with fields", handler: withHeader("Cache-Control", `private="X-User"`), reason: BypassCacheControl},
		{name: "nok, Cache-Control No-Cache", handler: withHeader("Cache-Control", "public, No-Cache"), reason: BypassCacheControl},
		{name: "ok, Cache-Control public", handler: withHeader("Cache-Control", "public, max-age=60"), stored: true},
		{name: "nok, Vary: *", handler: withHeader("Vary", "Accept, *"), reason: BypassVary},
		{name: "nok, a header value with a control byte", handler: withHeader("X-Odd", "a\x01b"), reason: BypassBadHeader},
		{
			name: "nok, a header name that is not a token",
			handler: func(c echo.Context) error {
				c.Response().Header()["Bad Name"] = []string{"v"}
				return c.String(http.StatusOK, "body")
			},
			reason: BypassBadHeader,
		},
		{
			name: "nok, handler error", handler: func(c echo.Context) error { return errRouteTest },
			wantCode: 500, wantBody: `{"message":"Internal Server Error"}` + "\n", reason: BypassError,
		},
		{
			name: "nok, handler writes nothing", handler: func(c echo.Context) error { return nil },
			wantBody: "", reason: BypassNoResponse,
		},
		{
			name: "nok, body over MaxBodySize still reaches the client whole", cfg: func(c *RouteConfig) { c.MaxBodySize = 99 },
			handler: text(200, big), wantBody: big, reason: BypassTooLarge,
		},
		{
			name: "ok, body of exactly MaxBodySize", cfg: func(c *RouteConfig) { c.MaxBodySize = 100 },
			handler: text(200, big), wantBody: big, stored: true,
		},
		{name: "nok, Authorization", hdr: []string{"Authorization", "Bearer x"}, handler: text(200, "body"), reason: BypassAuthorization},
		{
			name: "ok, Authorization when allowed", cfg: func(c *RouteConfig) { c.AllowAuthorization = true },
			hdr: []string{"Authorization", "Bearer x"}, handler: text(200, "body"), stored: true,
		},
		{
			name: "nok, Skipper", cfg: func(c *RouteConfig) { c.Skipper = func(echo.Context) bool { return true } },
			handler: text(200, "body"), reason: BypassSkipper,
		},
		{
			name: "nok, Unless (deprecated, folded into Skipper)", cfg: func(c *RouteConfig) { c.Unless = func(echo.Context) bool { return true } },
			handler: text(200, "body"), reason: BypassSkipper,
		},
		{
			name: "ok, Unless false", cfg: func(c *RouteConfig) { c.Unless = func(echo.Context) bool { return false } },
			handler: text(200, "body"), stored: true,
		},
		{
			name: "nok, ResponseFilter refuses",
			cfg: func(c *RouteConfig) {
				c.ResponseFilter = func(_ echo.Context, status int, h http.Header) bool { return h.Get("X-Draft") == "" }
			},
			handler: withHeader("X-Draft", "1"), reason: BypassFilter,
		},
		{
			name: "ok, ResponseFilter accepts",
			cfg: func(c *RouteConfig) {
				c.ResponseFilter = func(_ echo.Context, status int, h http.Header) bool { return status == 200 }
			},
			handler: text(200, "body"), stored: true,
		},
		{
			name: "nok, SetTTL 0",
			handler: func(c echo.Context) error {
				SetTTL(c, 0)
				return c.String(http.StatusOK, "body")
			},
			reason: BypassTTL,
		},
		{
			name: "nok, max-age=0 with TTLFromCacheControl", cfg: func(c *RouteConfig) { c.TTLFromCacheControl = true },
			handler: withHeader("Cache-Control", "public, max-age=0"), reason: BypassTTL,
		},
		{
			name: "nok, KeyFunc gives no key", cfg: func(c *RouteConfig) { c.KeyFunc = func(echo.Context) string { return "" } },
			handler: text(200, "body"), reason: BypassKey,
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
				mws := []echo.MiddlewareFunc{env.c.CachedWithConfig(cfg)}
				if tt.outer != nil {
					mws = append([]echo.MiddlewareFunc{tt.outer}, mws...)
				}
				env.e.Any("/r", env.counted(tt.handler), mws...)
				method := tt.method
				if method == "" {
					method = http.MethodGet
				}
				wantCode := tt.wantCode
				if wantCode == 0 {
					wantCode = http.StatusOK
				}
				wantBody := tt.wantBody
				if wantBody == "" && tt.handler != nil && !strings.Contains(tt.name, "writes nothing") {
					wantBody = "body"
				}

				for i := 1; i <= 2; i++ {
					rec := env.do(method, "/r", tt.hdr...)
					require.Equal(t, wantCode, rec.Code, "request %d", i)
					require.Equal(t, wantBody, rec.Body.String(), "request %d", i)
				}
				st := env.c.Stats()
				if tt.stored {
					assert.Equal(t, int64(1), env.calls.Load(), "stored: the second request is a hit")
					assert.Equal(t, uint64(1), st.Hits)
					assert.Equal(t, uint64(1), st.Stores)
					assert.Zero(t, st.TotalBypasses(), "bypasses: %v", st.Bypasses)
					return
				}
				assert.Equal(t, int64(2), env.calls.Load(), "not stored: the handler runs again")
				assert.Zero(t, st.Hits)
				assert.Zero(t, st.Stores)
				if tt.reason != "" {
					assert.Equal(t, uint64(2), st.Bypasses[tt.reason], "bypasses: %v", st.Bypasses)
				} else {
					assert.Zero(t, st.TotalBypasses(), "bypasses: %v", st.Bypasses)
				}
			})
		}
	})
}

var _ = strconv.Itoa

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

// TestCachedStoreRules checks the rules of what is stored where Echo v4 is
// involved (its cookies, outer middleware, its error handler, the
// deprecated Unless); internal/routetest checks every rule on every front
// end.
func TestCachedStoreRules(t *testing.T) {
	text := func(code int, body string) echo.HandlerFunc {
		return func(c echo.Context) error { return c.String(code, body) }
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
		{
			name: "nok, handler error", handler: func(c echo.Context) error { return errRouteTest },
			wantCode: 500, wantBody: `{"message":"Internal Server Error"}` + "\n", reason: BypassError,
		},
		{
			name: "nok, Unless (deprecated, folded into Skipper)", cfg: func(c *RouteConfig) { c.Unless = func(echo.Context) bool { return true } },
			handler: text(200, "body"), reason: BypassSkipper,
		},
		{
			name: "ok, Unless false", cfg: func(c *RouteConfig) { c.Unless = func(echo.Context) bool { return false } },
			handler: text(200, "body"), stored: true,
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

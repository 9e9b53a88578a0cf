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

// The cache never changes what a route answers to HEAD: a route Echo
// serves HEAD on gets the GET's page from the cache, a GET-only route gets
// Echo's 405 whether the page is cached or not.
//
// It stays an Echo v4 test: which registrations (GET, Match, Any, a
// group's) Echo routes HEAD to, and its 405, are Echo's routing. A HEAD
// answered from the GET's page is the route suite's (routetest,
// head-from-get), on every front end.
func TestCachedHead(t *testing.T) {
	both := []string{http.MethodGet, http.MethodHead}
	tests := []struct {
		name     string
		register func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc)
		path     string // default "/h"
		want     int
	}{
		{
			name:     "nok, e.GET with the middleware on the route",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) { env.e.GET("/h", h, cache) },
			want:     http.StatusMethodNotAllowed,
		},
		{
			name: "nok, e.GET under e.Use",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) {
				env.e.Use(cache)
				env.e.GET("/h", h)
			},
			want: http.StatusMethodNotAllowed,
		},
		{
			name:     "ok, e.Match GET and HEAD",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) { env.e.Match(both, "/h", h, cache) },
			want:     http.StatusOK,
		},
		{
			name: "ok, e.Match GET and HEAD under e.Use",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) {
				env.e.Use(cache)
				env.e.Match(both, "/h", h)
			},
			want: http.StatusOK,
		},
		{
			name: "ok, a group's Match",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) {
				env.e.Group("", cache).Match(both, "/h", h)
			},
			want: http.StatusOK,
		},
		{
			// A group with middleware routes what it does not serve to
			// its catch-all 404.
			name: "nok, a group's GET",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) {
				env.e.Group("/g", cache).GET("/h", h)
			},
			path: "/g/h", want: http.StatusNotFound,
		},
		{
			name:     "ok, e.Any",
			register: func(env *routeEnv, h echo.HandlerFunc, cache echo.MiddlewareFunc) { env.e.Any("/h", h, cache) },
			want:     http.StatusOK,
		},
	}
	const body = "<p>page</p>"
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				tt.register(env, env.counted(func(c echo.Context) error {
					return c.HTML(http.StatusOK, body)
				}), env.c.CachedWithConfig(env.cfg(time.Minute)))
				path := tt.path
				if path == "" {
					path = "/h"
				}

				cold := env.do(http.MethodHead, path)
				assert.Equal(t, tt.want, cold.Code, "cold HEAD")
				require.Equal(t, http.StatusOK, env.do(http.MethodGet, path).Code)
				get := env.do(http.MethodGet, path)
				require.Equal(t, StatusHit, get.Header().Get("X-Cache"), "the GET's page is stored")

				warm := env.do(http.MethodHead, path)
				assert.Equal(t, tt.want, warm.Code, "HEAD with the page stored")
				if tt.want != http.StatusOK {
					assert.Empty(t, warm.Header().Get("X-Cache"), "Echo's answer, as without the cache")
					if tt.want == http.StatusMethodNotAllowed {
						assert.Contains(t, warm.Header().Get(echo.HeaderAllow), "GET")
					}
					return
				}
				assert.Equal(t, StatusHit, warm.Header().Get("X-Cache"))
				assert.Empty(t, warm.Body.String())
				assert.Equal(t, strconv.Itoa(len(body)), warm.Header().Get(echo.HeaderContentLength))
				assert.Equal(t, get.Header().Get(echo.HeaderContentType), warm.Header().Get(echo.HeaderContentType))
				assert.Equal(t, get.Header().Get("ETag"), warm.Header().Get("ETag"))
			})
		}
	})
}

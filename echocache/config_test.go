package echocache

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

func TestRouteConfigToMiddleware(t *testing.T) {
	c := New(nil)
	tests := []struct {
		name    string
		cfg     func(*RouteConfig)
		wantErr string
	}{
		{name: "ok, defaults"},
		{name: "ok, NoExpiry", cfg: func(r *RouteConfig) { r.TTL = stores.NoExpiry }},
		{name: "ok, zero value fields get defaults", cfg: func(r *RouteConfig) { *r = RouteConfig{Cache: c} }},
		{name: "nok, no Cache", cfg: func(r *RouteConfig) { r.Cache = nil }, wantErr: "RouteConfig.Cache is required"},
		{name: "nok, negative TTL", cfg: func(r *RouteConfig) { r.TTL = -5 * time.Second }, wantErr: "RouteConfig.TTL"},
		{
			name:    "nok, KeyPrefix and KeyFunc",
			cfg:     func(r *RouteConfig) { r.KeyPrefix = "x"; r.KeyFunc = func(echo.Context) string { return "" } },
			wantErr: "KeyPrefix or KeyFunc",
		},
		{name: "nok, bad glob", cfg: func(r *RouteConfig) { r.IgnoreQueryParams = []string{"utm_["} }, wantErr: `bad pattern "utm_["`},
		{name: "nok, bad status", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{200, 42} }, wantErr: "bad status 42"},
		{name: "ok, final statuses", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{200, 203, 204, 300, 301, 404, 410, 501} }},
		{name: "nok, 103 is not final", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{200, 103} }, wantErr: "103 is informational"},
		{name: "nok, 101 is not a page", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{101} }, wantErr: "101 is informational"},
		{name: "nok, 206 is partial", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{200, 206} }, wantErr: "206 answers a range or conditional request"},
		{name: "nok, 304 is no page", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{200, 304} }, wantErr: "304 answers a range or conditional request"},
		{name: "nok, 416 answers a range", cfg: func(r *RouteConfig) { r.AllowedStatuses = []int{416} }, wantErr: "416 answers a range or conditional request"},
		{name: "nok, negative MaxBodySize", cfg: func(r *RouteConfig) { r.MaxBodySize = -1 }, wantErr: "MaxBodySize"},
		{name: "nok, negative StaleWhileRevalidate", cfg: func(r *RouteConfig) { r.StaleWhileRevalidate = -1 }, wantErr: "StaleWhileRevalidate"},
		{name: "nok, negative StaleIfError", cfg: func(r *RouteConfig) { r.StaleIfError = -1 }, wantErr: "StaleIfError"},
		{name: "nok, negative LockTimeout", cfg: func(r *RouteConfig) { r.LockTimeout = -1 }, wantErr: "LockTimeout"},
		{name: "nok, negative RefreshTimeout", cfg: func(r *RouteConfig) { r.RefreshTimeout = -1 }, wantErr: "RefreshTimeout"},
		{name: "nok, vary on *", cfg: func(r *RouteConfig) { r.VaryHeaders = []string{"*"} }, wantErr: "VaryHeaders"},
		{name: "ok, a cache name to quote", cfg: func(r *RouteConfig) { r.CacheStatusName = `app "one"` }},
		{name: "ok, no Cache-Status", cfg: func(r *RouteConfig) { r.CacheStatusName = "-" }},
		{name: "nok, a cache name with a line break", cfg: func(r *RouteConfig) { r.CacheStatusName = "app\r\nX-Injected: 1" }, wantErr: "RouteConfig.CacheStatusName"},
		{name: "nok, a cache name outside ASCII", cfg: func(r *RouteConfig) { r.CacheStatusName = "cach\u00e9" }, wantErr: "RouteConfig.CacheStatusName"},
		{name: "nok, StatusHeader on Cache-Status", cfg: func(r *RouteConfig) { r.StatusHeader = "cache-status" }, wantErr: `RouteConfig.StatusHeader "Cache-Status"`},
		{name: "ok, StatusHeader on Cache-Status without ours", cfg: func(r *RouteConfig) { r.StatusHeader, r.CacheStatusName = "Cache-Status", "-" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultRouteConfig
			cfg.Cache = c
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			mw, err := cfg.ToMiddleware()
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, mw)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "echocache: ")
			assert.Nil(t, mw)
			if cfg.Cache != nil {
				assert.Panics(t, func() { c.CachedWithConfig(cfg) }, "CachedWithConfig panics like echo's WithConfig")
			}
		})
	}
}

// The status header can be renamed or turned off.
func TestCachedStatusHeader(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	renamed := env.cfg(time.Minute)
	renamed.StatusHeader = "x-page-cache"
	off := env.cfg(time.Minute)
	off.StatusHeader = "-"
	env.e.GET("/renamed", env.textHandler(), c.CachedWithConfig(renamed))
	env.e.GET("/off", env.textHandler(), c.CachedWithConfig(off))

	env.do(http.MethodGet, "/renamed")
	rec := env.do(http.MethodGet, "/renamed")
	assert.Equal(t, StatusHit, rec.Header().Get("X-Page-Cache"))
	assert.Empty(t, rec.Header().Get("X-Cache"))

	env.do(http.MethodGet, "/off")
	rec = env.do(http.MethodGet, "/off")
	assert.Empty(t, rec.Header().Get("X-Cache"))
	assert.Equal(t, "page /off #2", rec.Body.String(), "still cached")
	assert.Equal(t, int64(2), env.calls.Load())
}

// Cached works on a route, a group, e.Use and around one handler, like the
// walkthrough's views, blueprints and modular views.
func TestCachedPlacements(t *testing.T) {
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		env := newRouteEnv(t, c)
		h := env.textHandler()
		env.e.GET("/route", h, c.Cached(time.Minute))
		g := env.e.Group("/group", c.Cached(time.Minute))
		g.GET("/a", h)
		env.e.GET("/wrapped", c.Cached(time.Minute)(h))

		used := echo.New()
		used.Use(c.Cached(time.Minute))
		used.GET("/used", h)

		for _, target := range []string{"/route", "/group/a", "/wrapped"} {
			env.do(http.MethodGet, target)
			assert.Equal(t, StatusHit, env.do(http.MethodGet, target).Header().Get("X-Cache"), target)
		}
		for i := range 2 {
			rec := httptestRecorder(used, "/used")
			assert.Equal(t, []string{StatusMiss, StatusHit}[i], rec.Header().Get("X-Cache"), "e.Use, request %d", i)
		}
	})
}

func httptestRecorder(e *echo.Echo, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptestRequestTo(target))
	return rec
}

package echov5_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/echov5"
	"github.com/echocache/echocache/internal/routetest"
)

// TestRouteSuite runs the route cache's HTTP behaviour suite on the Echo
// v5 middleware.
func TestRouteSuite(t *testing.T) { routetest.Run(t, v5Frontend{}) }

type v5Frontend struct{}

func (v5Frontend) NewApp(t testing.TB, c *echocache.Cache) routetest.App {
	return &v5App{Echo: echo.New(), c: c}
}

type v5App struct {
	*echo.Echo
	c *echocache.Cache
}

func (a *v5App) Route(path string, cfg routetest.Config, h routetest.Handler) {
	rc := echov5.DefaultRouteConfig
	rc.Cache = a.c
	if cfg.Skipper != nil {
		rc.Skipper = func(c *echo.Context) bool { return cfg.Skipper(c.Request()) }
	}
	rc.TTL = cfg.TTL
	rc.KeyPrefix = cfg.KeyPrefix
	if cfg.KeyFunc != nil {
		rc.KeyFunc = func(c *echo.Context) string { return cfg.KeyFunc(c.Request()) }
	}
	if cfg.IgnoreQueryParams != nil {
		rc.IgnoreQueryParams = cfg.IgnoreQueryParams
	}
	rc.DropQuery = cfg.DropQuery
	rc.VaryHeaders = cfg.VaryHeaders
	if cfg.AllowedStatuses != nil {
		rc.AllowedStatuses = cfg.AllowedStatuses
	}
	if cfg.MaxBodySize != 0 {
		rc.MaxBodySize = cfg.MaxBodySize
	}
	rc.AllowAuthorization = cfg.AllowAuthorization
	if cfg.ResponseFilter != nil {
		rc.ResponseFilter = func(c *echo.Context, status int, h http.Header) bool {
			return cfg.ResponseFilter(c.Request(), status, h)
		}
	}
	rc.TTLFromCacheControl = cfg.TTLFromCacheControl
	if cfg.StatusHeader != "" {
		rc.StatusHeader = cfg.StatusHeader
	}
	if cfg.CacheStatusName != "" {
		rc.CacheStatusName = cfg.CacheStatusName
	}
	rc.StaleWhileRevalidate = cfg.StaleWhileRevalidate
	rc.StaleIfError = cfg.StaleIfError
	rc.LockTimeout = cfg.LockTimeout
	var mws []echo.MiddlewareFunc
	if cfg.Outer != nil {
		mws = append(mws, func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c *echo.Context) error {
				_ = c.QueryParams()
				cfg.Outer(c.Response(), c.Request())
				return next(c)
			}
		})
	}
	mws = append(mws, echov5.CachedWithConfig(rc))
	if cfg.RecoverInside {
		mws = append(mws, middleware.Recover())
	}
	a.Any(path, func(c *echo.Context) error {
		err := h(v5Ctx{c})
		if se, ok := err.(routetest.StatusError); ok {
			return echo.NewHTTPError(int(se), "")
		}
		return err
	}, mws...)
}

type v5Ctx struct{ c *echo.Context }

func (x v5Ctx) QueryParam(name string) string { return x.c.QueryParam(name) }
func (x v5Ctx) QueryParams() url.Values       { return x.c.QueryParams() }
func (x v5Ctx) QueryString() string           { return x.c.QueryString() }
func (x v5Ctx) Request() *http.Request        { return x.c.Request() }
func (x v5Ctx) Response() http.ResponseWriter { return x.c.Response() }
func (x v5Ctx) SetTTL(ttl time.Duration)      { echov5.SetTTL(x.c, ttl) }
func (x v5Ctx) Tag(tags ...string)            { echov5.Tag(x.c, tags...) }

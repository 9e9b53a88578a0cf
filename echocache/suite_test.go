package echocache_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/routetest"
)

// TestRouteSuite runs the route cache's HTTP behaviour suite on the Echo
// v4 middleware.
func TestRouteSuite(t *testing.T) { routetest.Run(t, v4Frontend{}) }

type v4Frontend struct{}

func (v4Frontend) NewApp(t testing.TB, c *echocache.Cache) routetest.App {
	e := echo.New()
	e.Logger.SetOutput(io.Discard)
	return &v4App{Echo: e, c: c}
}

type v4App struct {
	*echo.Echo
	c *echocache.Cache
}

func (a *v4App) Route(path string, cfg routetest.Config, h routetest.Handler) {
	rc := echocache.DefaultRouteConfig
	rc.Cache = a.c
	if cfg.Skipper != nil {
		rc.Skipper = func(c echo.Context) bool { return cfg.Skipper(c.Request()) }
	}
	rc.TTL = cfg.TTL
	rc.KeyPrefix = cfg.KeyPrefix
	if cfg.KeyFunc != nil {
		rc.KeyFunc = func(c echo.Context) string { return cfg.KeyFunc(c.Request()) }
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
		rc.ResponseFilter = func(c echo.Context, status int, h http.Header) bool {
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
			return func(c echo.Context) error {
				_ = c.QueryParams()
				cfg.Outer(c.Response(), c.Request())
				return next(c)
			}
		})
	}
	mws = append(mws, a.c.CachedWithConfig(rc))
	if cfg.RecoverInside {
		mws = append(mws, middleware.Recover())
	}
	a.Any(path, func(c echo.Context) error {
		err := h(v4Ctx{c})
		if se, ok := err.(routetest.StatusError); ok {
			return echo.NewHTTPError(int(se))
		}
		return err
	}, mws...)
}

type v4Ctx struct{ c echo.Context }

func (x v4Ctx) QueryParam(name string) string { return x.c.QueryParam(name) }
func (x v4Ctx) QueryParams() url.Values       { return x.c.QueryParams() }
func (x v4Ctx) QueryString() string           { return x.c.QueryString() }
func (x v4Ctx) Request() *http.Request        { return x.c.Request() }
func (x v4Ctx) Response() http.ResponseWriter { return x.c.Response() }
func (x v4Ctx) SetTTL(ttl time.Duration)      { echocache.SetTTL(x.c, ttl) }
func (x v4Ctx) Tag(tags ...string)            { echocache.Tag(x.c, tags...) }

// Inform sends a 1xx through the writer under the *echo.Response, which
// would take it for the final status (routetest.Informer).
func (x v4Ctx) Inform(code int) { x.c.Response().Writer.WriteHeader(code) }

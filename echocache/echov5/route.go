// Package echov5 caches the routes of an Echo v5 app
// (github.com/labstack/echo/v5, whose handlers take a *echo.Context): the
// route middleware of package echocache, with the same RouteConfig fields
// in Echo v5's shapes, over the same page engine, so that a page is keyed,
// stored, served and invalidated exactly as under Echo v4. Everything else
// (the Cache, its stores, the typed API, memoize, Cache.DeletePage and
// Cache.InvalidateTag) is package echocache's and is shared: a page cached
// here is dropped by DeletePage like any other.
//
//	cache := echocache.New(store)
//	e := echo.New()
//	e.GET("/", index, echov5.Cached(cache, 10*time.Second))
//
// The package is part of the echocache module, whose go.mod requires Echo
// v5: an app on Echo v4 that never imports this package neither downloads
// nor compiles Echo v5 (the module graph is pruned).
package echov5

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// RouteConfig configures the route caching middleware. Its fields are
// those of echocache.RouteConfig, whose documentation gives the rules
// (what is stored, what is shared, stampede protection, stale pages),
// with Skipper, KeyFunc and ResponseFilter taking Echo v5's *echo.Context.
// A handler's error is judged as Echo v5's DefaultHTTPErrorHandler judges
// it: a failure (for StaleIfError, and for the waiters of a stampede) is
// any error whose echo.StatusCode is 0 or 5xx.
type RouteConfig struct {
	// Skipper skips the middleware entirely (BypassSkipper).
	// Optional. Default value middleware.DefaultSkipper.
	Skipper middleware.Skipper

	// Cache is the cache the pages are stored in; it may still be waiting
	// for Init.
	// Required.
	Cache *echocache.Cache

	// TTL is how long a stored page is fresh; SetTTL overrides it per
	// response.
	// Optional. Default value 0: the Cache's DefaultTTL.
	TTL time.Duration

	// KeyPrefix replaces the request path in the page key ("%s" stands for
	// the escaped path).
	// Optional. Default value "".
	KeyPrefix string

	// KeyFunc computes the page key of a request instead of host, path
	// and query; "" bypasses the cache. Pages keyed by it are deleted with
	// Cache.DeletePageKey.
	// Optional. Default value nil. Cannot be combined with KeyPrefix.
	KeyFunc func(c *echo.Context) string

	// IgnoreQueryParams lists query parameter names (path.Match globs)
	// left out of the key.
	// The handler of a miss or of a stale page's refresh runs with
	// these parameters removed from the request (URL.RawQuery,
	// RequestURI, the form, c.QueryParam, c.QueryParams and
	// c.QueryString), so that the page stored for "?a=1&utm_source=x"
	// is byte for byte the page of "?a=1", which it is served for;
	// middleware outside the route cache sees the request as it came. A request the cache passes through without
	// storing its answer (a bypass) keeps its query.
	// Optional. Default value echocache.DefaultIgnoreQueryParams.
	IgnoreQueryParams []string

	// DropQuery leaves the whole query string out of the key.
	// Optional. Default value false.
	DropQuery bool

	// VaryHeaders names request headers whose values are part of the key.
	// Optional. Default value nil.
	VaryHeaders []string

	// AllowedStatuses are the response statuses that are stored.
	// Optional. Default value []int{200}.
	AllowedStatuses []int

	// MaxBodySize is the largest body stored, in bytes.
	// Optional. Default value echocache.DefaultMaxBodySize (512 KiB).
	MaxBodySize int64

	// AllowAuthorization lets requests with an Authorization header use
	// the cache (RFC 9111, 3.5).
	// Optional. Default value false.
	AllowAuthorization bool

	// ResponseFilter decides whether a response that passed every other
	// rule is stored.
	// Optional. Default value nil (store it).
	ResponseFilter func(c *echo.Context, status int, header http.Header) bool

	// TTLFromCacheControl takes a response's TTL from its Cache-Control
	// (s-maxage, then max-age) when the handler did not call SetTTL.
	// Optional. Default value false.
	TTLFromCacheControl bool

	// StatusHeader is the response header set to HIT, MISS or STALE; "-"
	// sets none.
	// Optional. Default value echocache.DefaultStatusHeader ("X-Cache").
	StatusHeader string

	// CacheStatusName is the name of the route's cache in the Cache-Status
	// response header (RFC 9211) every response the middleware sees
	// carries; see echocache.RouteConfig.CacheStatusName for what it says.
	// Optional. Default value echocache.DefaultCacheStatusName
	// ("echocache"); "-" sends no Cache-Status.
	CacheStatusName string

	// StaleWhileRevalidate is how long after its TTL a page is still
	// served, marked STALE, while one background request refreshes it.
	// A refresh stores only what a miss of the same request would: it
	// runs as a plain GET (no Range or precondition, in any spelling), not
	// at all for a request with Authorization, and starts from the
	// response header the middleware outside the route had set (a
	// Cache-Control: private or a Set-Cookie for a session keeps its
	// response out, as it keeps the miss's).
	// Optional. Default value 0 (off).
	StaleWhileRevalidate time.Duration

	// StaleIfError is how long after its TTL a page is still served in
	// place of a failure (RFC 5861).
	// Optional. Default value 0 (off).
	StaleIfError time.Duration

	// LockTimeout enables a lock in the store so that processes sharing it
	// run the handler of a missing page once.
	// Optional. Default value 0 (no cross-process lock).
	LockTimeout time.Duration

	// RefreshTimeout bounds a background stale-while-revalidate refresh.
	// Optional. Default value echocache.DefaultRefreshTimeout (30s).
	RefreshTimeout time.Duration
}

// DefaultRouteConfig is the default route caching config.
var DefaultRouteConfig = RouteConfig{
	Skipper:           middleware.DefaultSkipper,
	IgnoreQueryParams: echocache.DefaultIgnoreQueryParams,
	AllowedStatuses:   []int{http.StatusOK},
	MaxBodySize:       echocache.DefaultMaxBodySize,
	StatusHeader:      echocache.DefaultStatusHeader,
	CacheStatusName:   echocache.DefaultCacheStatusName,
	RefreshTimeout:    echocache.DefaultRefreshTimeout,
}

// Cached returns middleware that caches GET responses in cache for ttl (0
// means the Cache's DefaultTTL): echocache's Cache.Cached for Echo v5.
// Use it on a route, a group or e.Use:
//
//	e.GET("/", views.Zen, echov5.Cached(cache, 10*time.Second))
//
// HEAD is answered from the GET's page on routes that Echo routes HEAD to
// like GET: registered for both methods, or any GET route when the router
// has AutoHandleHEAD. It panics if cache is nil.
func Cached(cache *echocache.Cache, ttl time.Duration) echo.MiddlewareFunc {
	cfg := DefaultRouteConfig
	cfg.Cache = cache
	cfg.TTL = ttl
	return CachedWithConfig(cfg)
}

// CachedWithConfig returns route caching middleware with cfg. It panics on
// an invalid config, like Echo's ...WithConfig functions; use
// RouteConfig.ToMiddleware to get the error.
func CachedWithConfig(cfg RouteConfig) echo.MiddlewareFunc {
	mw, err := cfg.ToMiddleware()
	if err != nil {
		panic(err)
	}
	return mw
}

// ToMiddleware validates cfg and returns the route caching middleware. It
// implements echo.MiddlewareConfigurator. Its errors name the field at
// fault ("echocache: RouteConfig.TTL ...").
func (cfg RouteConfig) ToMiddleware() (echo.MiddlewareFunc, error) {
	if cfg.Skipper == nil {
		cfg.Skipper = middleware.DefaultSkipper
	}
	var cc *core.Cache
	if cfg.Cache != nil {
		cc = (*core.Cache)(cfg.Cache)
	}
	eng, err := pagecache.New(pagecache.ConfigFrom(cc, &cfg))
	if err != nil {
		return nil, err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		r := pagecache.NewRoute[*echo.Context](eng, &route{cfg: &cfg, next: next})
		return r.Handle
	}, nil
}

// route is the front end of the page engine for Echo v5, for one wrapped
// handler.
type route struct {
	cfg  *RouteConfig
	next echo.HandlerFunc
}

func (f *route) Skip(c *echo.Context) bool { return f.cfg.Skipper(c) }

func (f *route) AdoptLogger(c *echo.Context) { adoptLogger((*core.Cache)(f.cfg.Cache), c) }

func (f *route) Request(c *echo.Context) *http.Request { return c.Request() }

func (f *route) ServesHead(c *echo.Context) bool { return servesHead(c) }

func (f *route) Key(c *echo.Context) string { return f.cfg.KeyFunc(c) }

func (f *route) Scheme(c *echo.Context, r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if !pagecache.Forwarded(r.Header) {
		if e := c.Echo(); e == nil || e.SchemeExtractor == nil {
			return "http"
		}
	}
	return c.Scheme()
}

func (f *route) Pass(c *echo.Context) error { return f.next(c) }

func (f *route) Writer(c *echo.Context) http.ResponseWriter { return c.Response() }

// Inner is the request's writer: the *echo.Response, or what middleware
// outside wrapped it in. A bare *echo.Response is given FlushError, since
// its Flush drops the error of a failed flush, which the capture writer
// needs to know that the client did not get the page.
func (f *route) Inner(c *echo.Context) http.ResponseWriter {
	w := c.Response()
	if res, ok := w.(*echo.Response); ok {
		return responseFlusher{res}
	}
	return w
}

// responseFlusher is an *echo.Response whose flush reports its error. It
// flushes the writer under the Response, as Response.Flush does.
type responseFlusher struct{ *echo.Response }

func (r responseFlusher) FlushError() error {
	return http.NewResponseController(r.Response.ResponseWriter).Flush()
}

// Unwrap returns the *echo.Response, for echo.UnwrapResponse and
// http.ResponseController.
func (r responseFlusher) Unwrap() http.ResponseWriter { return r.Response }

func (f *route) Run(c *echo.Context, r *http.Request, w http.ResponseWriter) (*http.Request, error) {
	orig, origReq := c.Response(), c.Request()
	c.SetResponse(w)
	if r.URL.RawQuery != origReq.URL.RawQuery {
		// Echo keeps the query it parsed across SetRequest: the handler's
		// QueryParam and QueryParams follow r (without ignored
		// parameters), as QueryString does.
		defer pagecache.NarrowQuery(c.QueryParams(), r)()
	}
	c.SetRequest(r)
	defer func() {
		c.SetResponse(orig)
		if c.Request() == r {
			c.SetRequest(origReq)
		}
	}()
	err := f.next(c)
	return c.Request(), err
}

// Failure follows Echo v5's DefaultHTTPErrorHandler: an error without a
// status (echo.StatusCode 0) is a 500.
func (f *route) Failure(err error) bool {
	code := echo.StatusCode(err)
	return code == 0 || code >= 500
}

func (f *route) Filter(c *echo.Context, status int, h http.Header) bool {
	return f.cfg.ResponseFilter(c, status, h)
}

// StaleWriter: a held failure never reached the *echo.Response, which is
// under the capture writer.
func (f *route) StaleWriter(c *echo.Context, _ int, _ int64) http.ResponseWriter {
	return c.Response()
}

// Detach copies the route and its path values: the *echo.Context goes
// back to Echo's pool when the request ends.
func (f *route) Detach(c *echo.Context) func(*http.Request, http.ResponseWriter) *echo.Context {
	e := c.Echo()
	ri := c.RouteInfo()
	routePath := c.Path()
	values := slices.Clone(c.PathValues())
	return func(r *http.Request, w http.ResponseWriter) *echo.Context {
		nc := e.NewContext(r, w)
		nc.InitializeRoute(&ri, &values)
		nc.SetPath(routePath)
		return nc
	}
}

// servesHead reports whether Echo routed a HEAD request to the route its
// GET goes to, so that the GET's page is what the route would answer: the
// GET route itself (the router's AutoHandleHEAD), or a route that the GET
// is routed to as well. A HEAD that got the 405 handler (the Allow list in
// the context), a group's catch-all 404, or no route at all (e.Pre) is
// not served from the cache. It routes the request once more, for HEAD
// only.
func servesHead(c *echo.Context) bool {
	e := c.Echo()
	if e == nil || c.Path() == "" || c.Get(echo.ContextKeyHeaderAllow) != nil {
		return false
	}
	if c.RouteInfo().Method == http.MethodGet {
		return true // AutoHandleHEAD: the GET route itself
	}
	get := c.Request().WithContext(c.Request().Context()) // a copy: routing writes its Pattern
	get.Method = http.MethodGet
	probe := e.NewContext(get, nil)
	e.Router().Route(probe)
	return probe.Path() == c.Path()
}

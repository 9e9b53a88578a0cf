package echocache

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// Defaults of RouteConfig.
const (
	// DefaultMaxBodySize is the largest response body a route stores. It
	// keeps entries under memcached's default 1 MB item size.
	DefaultMaxBodySize = pagecache.DefaultMaxBodySize
	// DefaultStatusHeader is the response header that tells HIT, MISS or
	// STALE.
	DefaultStatusHeader = pagecache.DefaultStatusHeader
	// DefaultRefreshTimeout bounds a background stale-while-revalidate
	// refresh.
	DefaultRefreshTimeout = pagecache.DefaultRefreshTimeout
	// DefaultCacheStatusName is the name the route cache gives itself in
	// the Cache-Status header (RFC 9211).
	DefaultCacheStatusName = pagecache.DefaultCacheStatusName
)

// DefaultIgnoreQueryParams are the query parameters left out of page keys
// by default: campaign and click trackers that never change a page.
var DefaultIgnoreQueryParams = pagecache.DefaultIgnoreQueryParams

// Values of the status header (RouteConfig.StatusHeader).
const (
	StatusHit   = pagecache.StatusHit
	StatusMiss  = pagecache.StatusMiss
	StatusStale = pagecache.StatusStale
)

// RouteConfig configures the route caching middleware: Flask-Cache's
// @cache.cached, with HTTP semantics that do not leak one client's response
// to another.
//
// A page is stored only when it is the whole, final answer a plain request
// for its key gets: never a response to a request with Range, If-Range or
// a precondition (RFC 9110, 13.1), nor one the handler did not finish
// cleanly (an error, a panic, a failed write to the client, a body that
// differs from its declared Content-Length) or finished after the
// request's context ended (the client went away, a deadline such as
// echo's ContextTimeout passed). The rules that decide whether a response
// is stored read header names in any case: a handler that assigns
// h["cache-control"] = []string{"private"} is heard, and so is middleware
// that sets a request's req.Header["cookie"] on a page that varies on
// Cookie (that response is not stored; see BypassHeaderCase).
//
// What the middleware cannot know: a handler that reads the request's
// cookies (a session, say) and renders per-user content without setting a
// cookie, Cache-Control: private or Vary: Cookie is declaring that page
// public, and it is shared like any other. Put such routes outside the
// cache, mark their responses private, add "Cookie" to VaryHeaders, or key
// them per user with KeyFunc. Requests with Authorization are never shared
// unless AllowAuthorization says so. Likewise a handler that turns a
// failure of its own (a timeout it set on a query, say) into a normal
// answer must say so with SetTTL(c, 0).
//
// An error handed to Echo's HTTPErrorHandler while the handler runs
// (c.Error, which middleware.Recover calls with a panic it recovers inside
// the cache, after the handler may have written part of its page) keeps
// the response out of the store (BypassError): the first request a route
// cache sees on an Echo wraps e.HTTPErrorHandler, once, to hear it. Set
// HTTPErrorHandler before the server starts, as Echo expects; one set
// later replaces the wrapper. middleware.Recover still belongs outside
// the cache too (e.Use it first), so that a panic in the cache's own code
// path is recovered.
type RouteConfig struct {
	// Skipper defines a function to skip the middleware entirely: the
	// request is neither answered from the cache nor stored, and is
	// counted as BypassSkipper. It is Echo's Skipper and Flask-Caching's
	// unless.
	// Optional. Default value middleware.DefaultSkipper.
	Skipper middleware.Skipper

	// Cache is the cache the pages are stored in. It may still be waiting
	// for Init: until then every request runs uncached.
	// Required (Cache.CachedWithConfig fills it with its receiver).
	Cache *Cache

	// TTL is how long a stored page is fresh. A handler can set the TTL of
	// its own response with SetTTL.
	// Optional. Default value 0: the Cache's DefaultTTL. stores.NoExpiry
	// keeps pages until they are deleted or evicted.
	TTL time.Duration

	// KeyPrefix replaces the request path in the page key, like
	// Flask-Cache's key_prefix: "%s" in it is replaced by the request's
	// (escaped) path, so "view/%s" keys each path apart, while a prefix
	// without "%s" gives every request of the route the same page. The
	// canonical query, the host and the vary headers still tell pages
	// apart.
	// Optional. Default value "": the request's escaped path.
	KeyPrefix string

	// KeyFunc computes the page key of a request instead of path and query.
	// The host is then not part of the key (include it yourself if it
	// matters); vary headers still are. An empty key bypasses the cache for
	// the request. Pages keyed by KeyFunc are deleted with DeletePageKey.
	// Optional. Default value nil. Cannot be combined with KeyPrefix.
	KeyFunc func(c echo.Context) string

	// IgnoreQueryParams lists query parameter names left out of the key,
	// as path.Match globs ("utm_*").
	// The handler of a miss or of a stale page's refresh runs with
	// these parameters removed from the request (URL.RawQuery,
	// RequestURI, the form, c.QueryParam, c.QueryParams and
	// c.QueryString), so that the page stored for "?a=1&utm_source=x"
	// is byte for byte the page of "?a=1", which it is served for;
	// middleware outside the route cache sees the request as it came. A request the cache passes through without
	// storing its answer (a bypass) keeps its query.
	// Optional. Default value DefaultIgnoreQueryParams; an empty, non-nil
	// slice keeps every parameter.
	IgnoreQueryParams []string

	// DropQuery leaves the whole query string out of the key, as
	// Flask-Cache did. Only safe for pages that ignore their query.
	// Optional. Default value false.
	DropQuery bool

	// VaryHeaders names request headers whose values are part of the key
	// (for example Accept-Language). The Vary header of each response is
	// honoured as well; a response with "Vary: *" is never stored.
	// Optional. Default value nil.
	VaryHeaders []string

	// AllowedStatuses are the response statuses that are stored. They must
	// be final statuses that answer a plain request whole: 1xx, 206, 304
	// and 416 are refused.
	// Optional. Default value []int{200}.
	AllowedStatuses []int

	// MaxBodySize is the largest body stored, in bytes. A larger response
	// still reaches the client whole; it is just not stored.
	// Optional. Default value DefaultMaxBodySize (512 KiB).
	MaxBodySize int64

	// AllowAuthorization lets requests that carry an Authorization header
	// use the cache. Only enable it for pages that are the same for every
	// user.
	// Optional. Default value false: such requests bypass the cache, and
	// their responses are never stored (RFC 9111, 3.5). The header is
	// read in any spelling: one that code set in the header map under a
	// non-canonical name (which Header.Get does not read) bypasses the
	// cache too.
	AllowAuthorization bool

	// Unless, when it returns true, skips the middleware like Skipper.
	//
	// Deprecated: Unless and Skipper did the same thing; use Skipper. When
	// both are set, either one returning true skips.
	Unless func(c echo.Context) bool

	// ResponseFilter decides whether a response that passed every other
	// rule is stored (Flask-Caching's response_filter). It sees the status
	// and the full response header.
	// Optional. Default value nil (store it).
	ResponseFilter func(c echo.Context, status int, header http.Header) bool

	// TTLFromCacheControl takes a response's TTL from its own
	// Cache-Control header, s-maxage first, then max-age, when the handler
	// did not call SetTTL. A value of 0 means the response is not stored;
	// so does a value that is not delta-seconds (max-age=-5, max-age=abc)
	// or a directive given twice with different values (RFC 9111, 4.2.1).
	// Optional. Default value false.
	TTLFromCacheControl bool

	// StatusHeader is the response header set to HIT, MISS or STALE, for
	// compatibility with tools that read X-Cache; Cache-Status (see
	// CacheStatusName) says more. A hit is HIT (a miss that waited for
	// another request's page too), a stale page STALE; a miss and a failed
	// lookup are MISS; a bypass sets none.
	// Optional. Default value DefaultStatusHeader ("X-Cache"); "-" sets no
	// header. "Cache-Status" is refused: that header is CacheStatusName's.
	StatusHeader string

	// CacheStatusName is the name of the route's cache in the Cache-Status
	// response header (RFC 9211), which every response the middleware sees
	// carries, bypasses included: its member is added after any member the
	// handler (a cache behind it) set, and says what the cache did:
	//
	//	echocache; hit; ttl=42                       a hit, fresh for 42 more seconds
	//	echocache; hit; ttl=-3                       a stale page, refreshed in the background
	//	echocache; fwd=uri-miss; ttl=60; stored      a miss, stored for 60 s
	//	echocache; fwd=vary-miss; ttl=60; stored     another variant of a stored page
	//	echocache; fwd=stale; ttl=60; stored         an expired (or invalidated) page, replaced
	//	echocache; fwd=uri-miss; detail=set-cookie   a miss not stored, and why (a BypassReason)
	//	echocache; fwd=uri-miss; collapsed           served the page a concurrent miss computed
	//	echocache; fwd=stale; fwd-status=503; ttl=-3; detail=status
	//	                                             a stale page in place of a failure (StaleIfError)
	//	echocache; fwd=method; detail=method         not GET or HEAD
	//	echocache; fwd=bypass; detail=authorization  a bypass, and why (a BypassReason)
	//	echocache; fwd=miss; detail=store-error      the store failed (store-unavailable: the breaker is open)
	//
	// A miss's member is decided when the handler writes the header, by
	// every rule the status and the header decide; what only the body or
	// the end of the request tells (a body over MaxBodySize without a
	// Content-Length that says so, a body shorter than its Content-Length,
	// the client leaving, SetTTL or Tag after the first write, the
	// ResponseFilter, the store write) comes too late for it: such a
	// response says "stored" and is not, as Stats.Bypasses and the
	// observers tell. Cache-Status tells anyone who can send a request
	// whether a page was cached (RFC 9211, section 6); turn it off where
	// that matters.
	// Optional. Default value DefaultCacheStatusName ("echocache"); a name
	// that is not an sf-token is quoted; "-" sends no Cache-Status.
	CacheStatusName string

	// StaleWhileRevalidate is how long after its TTL a page is still
	// served, marked STALE, while one background request refreshes it. The
	// refresh runs what this middleware wraps on a copy of the request (path
	// parameters included) with a recorder for a client and a context
	// detached from the original one; values that outer middleware stored
	// in the echo.Context with Set are not carried over.
	// A refresh stores only what a miss of the same request would: it
	// runs as a plain GET (no Range or precondition, in any spelling), not
	// at all for a request with Authorization, and starts from the
	// response header the middleware outside the route had set (a
	// Cache-Control: private or a Set-Cookie for a session keeps its
	// response out, as it keeps the miss's).
	// Optional. Default value 0 (off).
	StaleWhileRevalidate time.Duration

	// StaleIfError is how long after its TTL a page is still served,
	// marked STALE, in place of a failure (RFC 5861's stale-if-error).
	// Failures are:
	//   - an error the handler returns that Echo's DefaultHTTPErrorHandler
	//     answers with a 5xx: any error but an *echo.HTTPError with a code
	//     below 500 (that handler does not unwrap errors, so
	//     fmt.Errorf("...: %w", echo.ErrNotFound) is a 500 to it, and a
	//     failure here, while echo.ErrNotFound itself is an answer);
	//   - a response the handler writes with a 5xx status. It is held back
	//     until the handler returns, unless the handler flushes it or
	//     writes more than MaxBodySize, which sends it to the client as it
	//     is.
	// A 4xx response or *echo.HTTPError is an answer and goes to the
	// client; a panic goes on up the chain. A failure replaced by the stale
	// page does not reach Echo's error handler; Stats.StaleHits counts it.
	// Optional. Default value 0 (off).
	StaleIfError time.Duration

	// LockTimeout enables a lock in the store so that processes sharing it
	// run the handler of a missing page once: the others wait for the page
	// to appear, for at most LockTimeout, then run the handler themselves.
	// It is also the lifetime of the lock. Within one process, concurrent
	// misses of a page variant always run the handler once, lock or not,
	// and share its page; when that response cannot be shared (an error, a
	// panic, a cookie, private), they take turns rather than all run at
	// once (see Cached).
	// Optional. Default value 0 (no cross-process lock).
	LockTimeout time.Duration

	// RefreshTimeout bounds a background stale-while-revalidate refresh.
	// Optional. Default value DefaultRefreshTimeout (30s).
	RefreshTimeout time.Duration
}

// DefaultRouteConfig is the default route caching config.
var DefaultRouteConfig = RouteConfig{
	Skipper:           middleware.DefaultSkipper,
	IgnoreQueryParams: DefaultIgnoreQueryParams,
	AllowedStatuses:   []int{http.StatusOK},
	MaxBodySize:       DefaultMaxBodySize,
	StatusHeader:      DefaultStatusHeader,
	CacheStatusName:   DefaultCacheStatusName,
	RefreshTimeout:    DefaultRefreshTimeout,
}

// Cached returns middleware that caches GET responses for ttl (0 means the
// Cache's DefaultTTL), Flask-Cache's @cache.cached(timeout=ttl). Pages are
// keyed by host, path and canonical query (see RouteConfig). Use it on a
// route, a group, e.Use, or around one handler:
//
//	e.GET("/", views.Zen, cache.Cached(10*time.Second))
//	e.GET("/", cache.Cached(10*time.Second)(views.Zen))
//
// HEAD is answered from the GET's page (headers, no body) on routes that
// serve HEAD; a HEAD that misses runs the handler and stores nothing. Echo
// routes each method apart and answers a HEAD to a GET-only route with 405
// Method Not Allowed, cached or not, so register both methods to get it:
//
//	e.Match([]string{http.MethodGet, http.MethodHead}, "/", views.Zen, cache.Cached(10*time.Second))
//
// Concurrent misses of one page variant run the handler once and are all
// served its page; once a page's Vary headers are known, the requests of
// each variant wait for their own. When the response cannot be shared,
// the waiters take turns. After a failure (a panic, a 5xx response or
// error, a response cut short) one waiter runs the handler at a time, so
// that a failing backend sees one request per page, not a herd. After a
// whole answer that was the request's own (a cookie, private, a status not
// stored, a 4xx error) one more may run per such answer. No waiter ever
// gets a response that was not stored.
func (c *Cache) Cached(ttl time.Duration) echo.MiddlewareFunc {
	cfg := DefaultRouteConfig
	cfg.TTL = ttl
	return c.CachedWithConfig(cfg)
}

// CachedWithConfig returns route caching middleware with cfg. A nil
// cfg.Cache means c. It panics on an invalid config, like echo's
// ...WithConfig functions; use RouteConfig.ToMiddleware to get the error.
func (c *Cache) CachedWithConfig(cfg RouteConfig) echo.MiddlewareFunc {
	if cfg.Cache == nil {
		cfg.Cache = c
	}
	mw, err := cfg.ToMiddleware()
	if err != nil {
		panic(err)
	}
	return mw
}

// ToMiddleware validates cfg and returns the route caching middleware.
func (cfg RouteConfig) ToMiddleware() (echo.MiddlewareFunc, error) {
	if cfg.Skipper == nil {
		cfg.Skipper = DefaultRouteConfig.Skipper
	}
	if skip, unless := cfg.Skipper, cfg.Unless; unless != nil {
		cfg.Skipper = func(c echo.Context) bool { return skip(c) || unless(c) }
		cfg.Unless = nil
	}
	var cc *core.Cache
	if cfg.Cache != nil {
		cc = cfg.Cache.core()
	}
	eng, err := pagecache.New(pagecache.ConfigFrom(cc, &cfg))
	if err != nil {
		return nil, err
	}
	// The Echo whose error handler this middleware last saw wrapped: the
	// common case, one Echo, costs an atomic load per request.
	var watched atomic.Pointer[echo.Echo]
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		r := pagecache.NewRoute[echo.Context](eng, &echoRoute{cfg: &cfg, next: next})
		return func(c echo.Context) error {
			if e := c.Echo(); watched.Load() != e {
				watchErrors(e)
				watched.Store(e)
			}
			return r.Handle(c)
		}
	}, nil
}

// Package httpcache caches the pages of any net/http handler (the standard
// mux, chi, gorilla/mux ...): the route middleware of package echocache as
// a func(http.Handler) http.Handler, over the same page engine, with the
// same RouteConfig fields in net/http's shapes. The Cache, its stores,
// the typed API, memoize, Cache.DeletePage and Cache.InvalidateTag are
// package echocache's and are shared with the Echo front ends.
//
//	cache := echocache.New(store)
//	mux := http.NewServeMux()
//	mux.Handle("GET /", httpcache.Cached(cache, 10*time.Second)(http.HandlerFunc(index)))
//
// A handler sets the TTL and tags of the response it is building through
// its request: httpcache.SetTTL(r, ttl) and httpcache.Tag(r, tags...).
//
// What differs from Echo: a net/http handler returns no error, so a failure
// (for StaleIfError, and for the waiters of a stampede) is a 5xx status or
// a panic; HEAD is answered from the GET's page (a net/http handler serves
// HEAD as GET, and the server drops the body); the scheme in the key is
// https for a TLS connection and http otherwise (forwarding headers are not
// trusted: nothing tells which proxy is); and the cache's warnings go to
// slog.Default() at slog.LevelWarn unless its Config has a Logger.
package httpcache

import (
	"context"
	"net/http"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// RouteConfig configures the page caching middleware. Its fields are
// those of echocache.RouteConfig, whose documentation gives the rules
// (what is stored, what is shared, stampede protection, stale pages),
// with Skipper, KeyFunc and ResponseFilter taking the *http.Request.
type RouteConfig struct {
	// Skipper skips the middleware entirely (BypassSkipper).
	// Optional. Default value nil: no request is skipped.
	Skipper func(r *http.Request) bool

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
	KeyFunc func(r *http.Request) string

	// IgnoreQueryParams lists query parameter names (path.Match globs)
	// left out of the key.
	// The handler of a miss or of a stale page's refresh runs with
	// these parameters removed from the request (URL.RawQuery,
	// RequestURI, the form), so that the page stored for
	// "?a=1&utm_source=x" is byte for byte the page of "?a=1", which
	// it is served for; middleware outside the route cache sees the
	// request as it came. A request the cache passes through without
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
	ResponseFilter func(r *http.Request, status int, header http.Header) bool

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
	// place of a 5xx response (RFC 5861).
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

// Cached returns middleware that caches GET responses in cache for ttl (0
// means the Cache's DefaultTTL): echocache's Cache.Cached for net/http.
// It panics if cache is nil.
func Cached(cache *echocache.Cache, ttl time.Duration) func(http.Handler) http.Handler {
	return CachedWithConfig(RouteConfig{Cache: cache, TTL: ttl})
}

// CachedWithConfig returns page caching middleware with cfg. It panics on
// an invalid config; use RouteConfig.ToMiddleware to get the error.
func CachedWithConfig(cfg RouteConfig) func(http.Handler) http.Handler {
	mw, err := cfg.ToMiddleware()
	if err != nil {
		panic(err)
	}
	return mw
}

// ToMiddleware validates cfg and returns the page caching middleware. Its
// errors name the field at fault ("echocache: RouteConfig.TTL ...").
func (cfg RouteConfig) ToMiddleware() (func(http.Handler) http.Handler, error) {
	var cc *core.Cache
	if cfg.Cache != nil {
		cc = (*core.Cache)(cfg.Cache)
	}
	eng, err := pagecache.New(pagecache.ConfigFrom(cc, &cfg))
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		r := pagecache.NewRoute[call](eng, &route{cfg: &cfg, next: next})
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_ = r.Handle(call{w, req}) // a net/http handler returns no error
		})
	}, nil
}

// SetTTL sets how long the response being built for r is cached,
// overriding the route's TTL (echocache.SetTTL for net/http). A ttl of 0
// (or any negative ttl but stores.NoExpiry) means the response is not
// stored. r is the handler's request, or one whose context derives from
// it. Outside cached routes it does nothing.
func SetTTL(r *http.Request, ttl time.Duration) { pagecache.SetTTL(r.Context(), ttl) }

// Tag attaches tags to the response being built for r, so that
// Cache.InvalidateTag drops it (echocache.Tag for net/http). Call it
// before reading the data the response is built from. Outside cached
// routes it does nothing; if the tag versions cannot be read, the
// response is not stored.
func Tag(r *http.Request, tags ...string) { pagecache.Tag(r.Context(), tags...) }

// cacheKey is the context key of WithCache.
type cacheKey struct{}

// WithCache returns middleware that puts c in every request's context,
// where handlers find it with FromContext.
func WithCache(c *echocache.Cache) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), cacheKey{}, c)))
		})
	}
}

// FromContext returns the Cache that WithCache put in ctx (a request's
// context), or nil. A nil *echocache.Cache is safe with the typed API;
// since that hides a forgotten WithCache, the first nil it returns in a
// process is logged (once, through slog.Default()).
func FromContext(ctx context.Context) *echocache.Cache {
	c, _ := ctx.Value(cacheKey{}).(*echocache.Cache)
	if c == nil {
		core.WarnNoCache("httpcache.WithCache(cache) around the handler")
	}
	return c
}

// call is one request as the page engine sees it.
type call struct {
	w http.ResponseWriter
	r *http.Request
}

// route is the front end of the page engine for net/http, for one wrapped
// handler.
type route struct {
	cfg  *RouteConfig
	next http.Handler
}

func (f *route) Skip(c call) bool { return f.cfg.Skipper != nil && f.cfg.Skipper(c.r) }

// AdoptLogger adopts nothing: net/http has no logger of its own, and the
// cache's default, slog.Default() read at each line, is the one to use.
func (f *route) AdoptLogger(call) {}

func (f *route) Request(c call) *http.Request { return c.r }

func (f *route) ServesHead(call) bool { return true }

func (f *route) Key(c call) string { return f.cfg.KeyFunc(c.r) }

func (f *route) Scheme(_ call, r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func (f *route) Pass(c call) error {
	f.next.ServeHTTP(c.w, c.r)
	return nil
}

func (f *route) Writer(c call) http.ResponseWriter { return c.w }

func (f *route) Inner(c call) http.ResponseWriter { return c.w }

func (f *route) Run(_ call, r *http.Request, w http.ResponseWriter) (*http.Request, error) {
	f.next.ServeHTTP(w, r)
	return r, nil
}

func (f *route) Failure(error) bool { return true }

func (f *route) Filter(c call, status int, h http.Header) bool {
	return f.cfg.ResponseFilter(c.r, status, h)
}

func (f *route) StaleWriter(c call, _ int, _ int64) http.ResponseWriter { return c.w }

func (f *route) Detach(call) func(*http.Request, http.ResponseWriter) call {
	return func(r *http.Request, w http.ResponseWriter) call { return call{w, r} }
}

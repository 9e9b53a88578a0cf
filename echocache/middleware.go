package echocache

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echocache/echocache/stores"
)

// Defaults of RouteConfig.
const (
	// DefaultMaxBodySize is the largest response body a route stores. It
	// keeps entries under memcached's default 1 MB item size.
	DefaultMaxBodySize = 512 << 10
	// DefaultStatusHeader is the response header that tells HIT, MISS or
	// STALE.
	DefaultStatusHeader = "X-Cache"
	// DefaultRefreshTimeout bounds a background stale-while-revalidate
	// refresh.
	DefaultRefreshTimeout = 30 * time.Second
)

// DefaultIgnoreQueryParams are the query parameters left out of page keys
// by default: campaign and click trackers that never change a page.
var DefaultIgnoreQueryParams = []string{"utm_*", "fbclid", "gclid"}

// Values of the status header (RouteConfig.StatusHeader).
const (
	StatusHit   = "HIT"
	StatusMiss  = "MISS"
	StatusStale = "STALE"
)

// Bypass reasons counted in Stats.Bypasses by the route middleware.
const (
	BypassNoStore       = "no-store"      // the Cache has no store yet (before Init)
	BypassMethod        = "method"        // not GET or HEAD
	BypassAuthorization = "authorization" // the request has Authorization
	BypassUnless        = "unless"        // RouteConfig.Unless returned true
	BypassKey           = "key"           // RouteConfig.KeyFunc returned ""
	BypassHead          = "head"          // a HEAD request missed (HEAD responses are not stored)
	BypassError         = "error"         // the handler returned an error
	BypassPanic         = "panic"         // the handler panicked
	BypassNoResponse    = "no-response"   // the handler wrote nothing
	BypassHijacked      = "hijacked"      // the handler hijacked the connection
	BypassStatus        = "status"        // status not in RouteConfig.AllowedStatuses
	BypassSetCookie     = "set-cookie"    // the response sets a cookie
	BypassCacheControl  = "cache-control" // Cache-Control no-store, private or no-cache
	BypassVary          = "vary"          // Vary: *
	BypassTooLarge      = "too-large"     // body over RouteConfig.MaxBodySize
	BypassTTL           = "ttl"           // SetTTL(c, 0) or a max-age of 0
	BypassFilter        = "filter"        // RouteConfig.ResponseFilter returned false
	BypassTagError      = "tag-error"     // Tag could not read the tag versions
	BypassBadHeader     = "bad-header"    // a header name or value that cannot be replayed
)

// RouteConfig configures the route caching middleware: Flask-Cache's
// @cache.cached, with HTTP semantics that do not leak one client's response
// to another.
//
// What the middleware cannot know: a handler that reads the request's
// cookies (a session, say) and renders per-user content without setting a
// cookie, Cache-Control: private or Vary: Cookie is declaring that page
// public, and it is shared like any other. Put such routes outside the
// cache, mark their responses private, add "Cookie" to VaryHeaders, or key
// them per user with KeyFunc. Requests with Authorization are never shared
// unless AllowAuthorization says so.
type RouteConfig struct {
	// Skipper defines a function to skip the middleware entirely.
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

	// AllowedStatuses are the response statuses that are stored.
	// Optional. Default value []int{200}.
	AllowedStatuses []int

	// MaxBodySize is the largest body stored, in bytes. A larger response
	// still reaches the client whole; it is just not stored.
	// Optional. Default value DefaultMaxBodySize (512 KiB).
	MaxBodySize int64

	// AllowAuthorization lets requests that carry an Authorization header
	// use the cache. Only enable it for pages that are the same for every
	// user.
	// Optional. Default value false: such requests bypass the cache.
	AllowAuthorization bool

	// Unless, when it returns true, bypasses the cache for the request
	// (Flask-Caching's unless).
	// Optional. Default value nil.
	Unless func(c echo.Context) bool

	// ResponseFilter decides whether a response that passed every other
	// rule is stored (Flask-Caching's response_filter). It sees the status
	// and the full response header.
	// Optional. Default value nil (store it).
	ResponseFilter func(c echo.Context, status int, header http.Header) bool

	// TTLFromCacheControl takes a response's TTL from its own
	// Cache-Control header, s-maxage first, then max-age, when the handler
	// did not call SetTTL. A value of 0 means the response is not stored.
	// Optional. Default value false.
	TTLFromCacheControl bool

	// StatusHeader is the response header set to HIT, MISS or STALE.
	// Optional. Default value DefaultStatusHeader ("X-Cache"); "-" sets no
	// header.
	StatusHeader string

	// StaleWhileRevalidate is how long after its TTL a page is still
	// served, marked STALE, while one background request refreshes it. The
	// refresh runs what this middleware wraps on a copy of the request (path
	// parameters included) with a recorder for a client and a context
	// detached from the original one; values that outer middleware stored
	// in the echo.Context with Set are not carried over.
	// Optional. Default value 0 (off).
	StaleWhileRevalidate time.Duration

	// StaleIfError is how long after its TTL a page is served, marked
	// STALE, in place of a handler error or a 5xx response.
	// Optional. Default value 0 (off).
	StaleIfError time.Duration

	// LockTimeout enables a lock in the store so that processes sharing it
	// run the handler of a missing page once: the others wait for the page
	// to appear, for at most LockTimeout, then run the handler themselves.
	// It is also the lifetime of the lock. Within one process, concurrent
	// misses always run the handler once, lock or not.
	// Optional. Default value 0 (no cross-process lock).
	LockTimeout time.Duration

	// RefreshTimeout bounds a background stale-while-revalidate refresh.
	// Optional. Default value DefaultRefreshTimeout (30s).
	RefreshTimeout time.Duration

	now func() time.Time // tests
}

// DefaultRouteConfig is the default route caching config.
var DefaultRouteConfig = RouteConfig{
	Skipper:           middleware.DefaultSkipper,
	IgnoreQueryParams: DefaultIgnoreQueryParams,
	AllowedStatuses:   []int{http.StatusOK},
	MaxBodySize:       DefaultMaxBodySize,
	StatusHeader:      DefaultStatusHeader,
	RefreshTimeout:    DefaultRefreshTimeout,
}

// Cached returns middleware that caches GET responses for ttl (0 means the
// Cache's DefaultTTL), Flask-Cache's @cache.cached(timeout=ttl). HEAD
// requests are answered from the GET's page (headers, no body); a HEAD that
// misses runs the handler and stores nothing. Pages are keyed by host, path
// and canonical query (see RouteConfig). Use it on a route, a group, e.Use,
// or around one handler:
//
//	e.GET("/", views.Zen, cache.Cached(10*time.Second))
//	e.GET("/", cache.Cached(10*time.Second)(views.Zen))
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
	m, err := newRouteMW(cfg)
	if err != nil {
		return nil, err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error { return m.handle(ec, next) }
	}, nil
}

// routeMW is one route middleware, its config resolved once.
type routeMW struct {
	cfg          RouteConfig
	cache        *Cache
	keying       keying
	vary         []string
	statusHeader string
	st           *routeState
}

func newRouteMW(cfg RouteConfig) (*routeMW, error) {
	if cfg.Cache == nil {
		return nil, errors.New("echocache: RouteConfig.Cache is required")
	}
	if cfg.TTL < 0 && cfg.TTL != stores.NoExpiry {
		return nil, fmt.Errorf("echocache: RouteConfig.TTL %v is negative (use stores.NoExpiry for no expiry)", cfg.TTL)
	}
	if cfg.KeyPrefix != "" && cfg.KeyFunc != nil {
		return nil, errors.New("echocache: RouteConfig: set KeyPrefix or KeyFunc, not both")
	}
	for name, d := range map[string]time.Duration{
		"StaleWhileRevalidate": cfg.StaleWhileRevalidate, "StaleIfError": cfg.StaleIfError,
		"LockTimeout": cfg.LockTimeout, "RefreshTimeout": cfg.RefreshTimeout,
	} {
		if d < 0 {
			return nil, fmt.Errorf("echocache: RouteConfig.%s %v is negative", name, d)
		}
	}
	if cfg.MaxBodySize < 0 {
		return nil, fmt.Errorf("echocache: RouteConfig.MaxBodySize %d is negative", cfg.MaxBodySize)
	}
	if cfg.Skipper == nil {
		cfg.Skipper = DefaultRouteConfig.Skipper
	}
	if cfg.IgnoreQueryParams == nil {
		cfg.IgnoreQueryParams = DefaultIgnoreQueryParams
	}
	for _, g := range cfg.IgnoreQueryParams {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("echocache: RouteConfig.IgnoreQueryParams: bad pattern %q", g)
		}
	}
	if cfg.AllowedStatuses == nil {
		cfg.AllowedStatuses = []int{http.StatusOK}
	}
	for _, s := range cfg.AllowedStatuses {
		if s < 100 || s > 999 {
			return nil, fmt.Errorf("echocache: RouteConfig.AllowedStatuses: bad status %d", s)
		}
	}
	if cfg.MaxBodySize == 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	m := &routeMW{
		cache: cfg.Cache,
		keying: keying{
			prefix:    cfg.KeyPrefix,
			ignore:    compileIgnore(cfg.IgnoreQueryParams),
			dropQuery: cfg.DropQuery,
			custom:    cfg.KeyFunc != nil,
		},
		vary: canonicalNames(cfg.VaryHeaders),
	}
	if slices.Contains(m.vary, "*") {
		return nil, errors.New(`echocache: RouteConfig.VaryHeaders: "*" would make every request a different page`)
	}
	cfg.AllowedStatuses = slices.Clone(cfg.AllowedStatuses)
	switch cfg.StatusHeader {
	case "":
		m.statusHeader = DefaultStatusHeader
	case "-":
	default:
		m.statusHeader = textproto.CanonicalMIMEHeaderKey(cfg.StatusHeader)
	}
	m.cfg = cfg
	m.st = routeStateOf(cfg.Cache)
	m.st.addKeying(m.keying)
	return m, nil
}

// routeState is the route caching state shared by every middleware of a
// Cache: in-flight misses, running refreshes, and the keyings DeletePage
// must cover.
type routeState struct {
	mu       sync.Mutex
	flights  map[string]*routeFlight
	keyings  map[string]keying
	refreshs sync.Map // variant key -> struct{}

	refreshDone func() // tests: called when a background refresh ends
	onWait      func() // tests: called when a request starts waiting for another's miss
}

func routeStateOf(c *Cache) *routeState {
	return state(c, "echocache.route", func() *routeState {
		return &routeState{flights: map[string]*routeFlight{}, keyings: map[string]keying{}}
	})
}

func (st *routeState) addKeying(k keying) {
	if k.custom {
		return
	}
	st.mu.Lock()
	st.keyings[k.id()] = k
	st.mu.Unlock()
}

func (st *routeState) allKeyings() []keying {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.keyings) == 0 {
		return []keying{{ignore: defaultIgnore}}
	}
	out := make([]keying, 0, len(st.keyings))
	for _, k := range st.keyings {
		out = append(out, k)
	}
	return out
}

// routeFlight is one miss being computed in this process. Requests for the
// same page wait for it; entry is set, before done closes, only when the
// leader's response was stored (or storable).
type routeFlight struct {
	done  chan struct{}
	entry []byte
}

func (st *routeState) join(key string) (*routeFlight, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if f, ok := st.flights[key]; ok {
		return f, false
	}
	f := &routeFlight{done: make(chan struct{})}
	st.flights[key] = f
	return f, true
}

func (st *routeState) finish(key string, f *routeFlight) {
	st.mu.Lock()
	if st.flights[key] == f {
		delete(st.flights, key)
	}
	st.mu.Unlock()
	close(f.done)
}

// clock returns the time a lookup compares entries with, in unix
// nanoseconds (the test clock when one is set).
func (m *routeMW) clock() int64 {
	if m.cfg.now != nil {
		return m.cfg.now().UnixNano()
	}
	return time.Now().UnixNano()
}

// keyBuf is a pooled buffer for building keys.
type keyBuf struct{ b []byte }

var keyBufPool = sync.Pool{New: func() any { return &keyBuf{b: make([]byte, 0, 256)} }}

// lookupState says what a lookup found.
type lookupState int

const (
	lookMiss   lookupState = iota // nothing usable
	lookFresh                     // a fresh entry
	lookStale                     // inside stale-while-revalidate
	lookError                     // expired, inside stale-if-error only
	lookFailed                    // the store could not answer
)

type lookup struct {
	state    lookupState
	buf      entry  // where lookup decodes entries without a memo
	nonce    uint64 // the page's nonce, when a page record exists
	hasNonce bool
}

// handle is the middleware.
func (m *routeMW) handle(ec echo.Context, next echo.HandlerFunc) error {
	if m.cfg.Skipper(ec) {
		return next(ec)
	}
	c := m.cache
	if c.store.Load() == nil {
		c.countBypass(BypassNoStore)
		return next(ec)
	}
	c.adoptEchoLogger(ec)
	req := ec.Request()
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		c.countBypass(BypassMethod)
		return next(ec)
	}
	if !m.cfg.AllowAuthorization && len(req.Header[echo.HeaderAuthorization]) > 0 {
		c.countBypass(BypassAuthorization)
		return next(ec)
	}
	if m.cfg.Unless != nil && m.cfg.Unless(ec) {
		c.countBypass(BypassUnless)
		return next(ec)
	}

	kb := keyBufPool.Get().(*keyBuf)
	defer keyBufPool.Put(kb)
	if m.keying.custom {
		k := m.cfg.KeyFunc(ec)
		if k == "" {
			c.countBypass(BypassKey)
			return next(ec)
		}
		kb.b = appendCustomPageKey(kb.b[:0], k)
	} else {
		kb.b = m.keying.appendPageKey(kb.b[:0], req.URL.EscapedPath(), req.URL.RawQuery)
	}
	// On an in-process store that hands out its bytes, the lookup needs no
	// key string of its own: it views kb, which stays unchanged until the
	// key is cloned below, before anything can keep it.
	viewer := c.viewer()
	viewed := viewer != nil
	var pageKey string
	if viewed {
		pageKey = bstr(kb.b)
	} else {
		pageKey = string(kb.b)
	}
	ctx := req.Context()
	now := m.clock()

	var lk lookup
	e := m.lookup(&lk, ctx, ec, kb, viewer, pageKey, now)
	if lk.state == lookFresh {
		c.stats.hits.Add(1)
		return m.serve(ec, e, StatusHit, now, ec.Response())
	}
	if viewed {
		pageKey = strings.Clone(pageKey)
	}
	switch lk.state {
	case lookStale:
		c.stats.stale.Add(1)
		m.refresh(ec, next, pageKey, e.nonce, string(e.key))
		return m.serve(ec, e, StatusStale, now, ec.Response())
	case lookFailed:
		// Fail open: the core has counted and logged the store error.
		if m.statusHeader != "" {
			ec.Response().Header().Set(m.statusHeader, StatusMiss)
		}
		return next(ec)
	}

	return m.miss(ec, next, kb, pageKey, &lk, e)
}

// miss handles a request that found no usable page. (A separate function, so
// that the hit path's lookup stays on the stack.)
// e is the expired entry lookup found, if any.
func (m *routeMW) miss(ec echo.Context, next echo.HandlerFunc, kb *keyBuf, pageKey string, lk *lookup, e *entry) error {
	c := m.cache
	req := ec.Request()
	ctx := req.Context()
	var stale *entry
	if lk.state == lookError {
		// A copy: e may be lk.buf, on the caller's stack.
		stale = new(entry)
		*stale = *e
	}
	if req.Method == http.MethodHead {
		// A HEAD response has no body to store, and a handler may answer
		// HEAD differently; only GET fills the cache.
		c.stats.misses.Add(1)
		c.countBypass(BypassHead)
		return m.run(ec, next, missParams{pageKey: pageKey, stale: stale, nonce: lk.nonce, hasNonce: lk.hasNonce, noStore: true}, nil)
	}

	// One miss per page and variant known before the handler runs.
	kb.b = appendHostPart(append(kb.b[:0], pageKey...), ec, m.keying.custom)
	kb.b = appendVaryValues(kb.b, req.Header, m.vary, nil)
	flightKey := string(kb.b)
	f, leader := m.st.join(flightKey)
	if !leader {
		if m.st.onWait != nil {
			m.st.onWait()
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.entry != nil {
			// The leader's own encoding, handed over in-process.
			if e, err := decodeEntry(f.entry, false); err == nil && m.matches(ec, kb, pageKey, &e) {
				c.stats.hits.Add(1)
				return m.serve(ec, &e, StatusHit, m.clock(), ec.Response())
			}
		}
		// The leader's response could not be shared (not cacheable, an
		// error, a panic, another variant): run the handler ourselves.
		c.stats.misses.Add(1)
		return m.run(ec, next, missParams{pageKey: pageKey, stale: stale, nonce: lk.nonce, hasNonce: lk.hasNonce}, nil)
	}
	defer m.st.finish(flightKey, f)

	if m.cfg.LockTimeout > 0 {
		release, acquired := c.lock(ctx, flightKey, m.cfg.LockTimeout)
		if acquired {
			defer release()
		} else if done, err := m.awaitOther(ec, kb, pageKey, f); done {
			return err
		}
	}
	c.stats.misses.Add(1)
	return m.run(ec, next, missParams{pageKey: pageKey, stale: stale, nonce: lk.nonce, hasNonce: lk.hasNonce}, f)
}

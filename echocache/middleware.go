package echocache

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"path"
	"slices"
	"strconv"
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
			ignore:    slices.Clone(cfg.IgnoreQueryParams),
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
		return []keying{{ignore: DefaultIgnoreQueryParams}}
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
	e        entry
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
	if c.cfg.Logger == nil && c.echoLogger.Load() == nil {
		if e := ec.Echo(); e != nil && e.Logger != nil {
			c.SetEchoLogger(e.Logger)
		}
	}
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
	m.lookup(&lk, ctx, ec, kb, viewer, pageKey, now)
	if lk.state == lookFresh {
		c.stats.hits.Add(1)
		return m.serve(ec, &lk.e, StatusHit, now, ec.Response())
	}
	if viewed {
		pageKey = strings.Clone(pageKey)
	}
	switch lk.state {
	case lookStale:
		c.stats.stale.Add(1)
		m.refresh(ec, next, pageKey, lk.e.nonce, string(lk.e.key))
		return m.serve(ec, &lk.e, StatusStale, now, ec.Response())
	case lookFailed:
		// Fail open: the core has counted and logged the store error.
		if m.statusHeader != "" {
			ec.Response().Header().Set(m.statusHeader, StatusMiss)
		}
		return next(ec)
	}

	return m.miss(ec, next, kb, pageKey, lk)
}

// miss handles a request that found no usable page. (A separate function, so
// that the hit path's lookup stays on the stack.)
func (m *routeMW) miss(ec echo.Context, next echo.HandlerFunc, kb *keyBuf, pageKey string, lk lookup) error {
	c := m.cache
	req := ec.Request()
	ctx := req.Context()
	var stale *entry
	if lk.state == lookError {
		stale = &lk.e
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

// lookup reads the page record and, when the request is another variant,
// the variant record.
func (m *routeMW) lookup(lk *lookup, ctx context.Context, ec echo.Context, kb *keyBuf, viewer stores.Viewer, pageKey string, now int64) {
	c := m.cache
	raw, err := c.storeView(ctx, viewer, pageKey)
	if err != nil {
		if !errors.Is(err, stores.ErrNotFound) {
			lk.state = lookFailed
		}
		return
	}
	e := &lk.e
	if *e, err = decodeEntry(raw, viewer == nil); err != nil {
		m.dropCorrupt(ctx, pageKey)
		return
	}
	lk.nonce, lk.hasNonce = e.nonce, true
	if !m.matches(ec, kb, pageKey, e) {
		kb.b = m.appendVariant(kb.b[:0], ec, pageKey, e.nonce, e.varyNames())
		variantKey := string(kb.b)
		raw, err = c.storeView(ctx, viewer, variantKey)
		if err != nil {
			if !errors.Is(err, stores.ErrNotFound) {
				lk.state = lookFailed
			}
			return
		}
		if *e, err = decodeEntry(raw, viewer == nil); err != nil {
			m.dropCorrupt(ctx, variantKey)
			return
		}
		if !m.matches(ec, kb, pageKey, e) {
			return // another request's entry (a store's hash collision)
		}
	}
	switch {
	case now < e.freshUntil:
		lk.state = lookFresh
	case now < e.swrUntil:
		lk.state = lookStale
	case now < e.sieUntil:
		lk.state = lookError
	default:
		return
	}
	if e.nTags > 0 {
		ok, err := c.tagsCurrent(ctx, e)
		if err != nil {
			lk.state = lookFailed
		} else if !ok {
			lk.state = lookMiss
		}
	}
}

// matches reports whether e was stored under the variant key the request
// has for e's page nonce and Vary names. When vary headers are involved it
// builds that key in kb (where the caller finds it); otherwise it compares
// the parts in place, which is the common hit path.
func (m *routeMW) matches(ec echo.Context, kb *keyBuf, pageKey string, e *entry) bool {
	if len(m.vary) > 0 || e.nVary > 0 {
		kb.b = m.appendVariant(kb.b[:0], ec, pageKey, e.nonce, e.varyNames())
		return string(kb.b) == string(e.key)
	}
	// The same layout as appendVariant: page key, nonce, host part.
	k := e.key
	if len(k) < len(pageKey)+10 || string(k[:len(pageKey)]) != pageKey {
		return false
	}
	k = k[len(pageKey):]
	if k[0] != 0 || binary.BigEndian.Uint64(k[1:]) != e.nonce || k[9] != 0 {
		return false
	}
	k = k[10:]
	if m.keying.custom {
		return len(k) == 0
	}
	sch, host := scheme(ec), ec.Request().Host
	if len(k) != len(sch)+3+len(host) || !equalLower(k[:len(sch)], sch) || string(k[len(sch):len(sch)+3]) != "://" {
		return false
	}
	k = k[len(sch)+3:]
	return string(k) == host || equalLower(k, host)
}

// equalLower reports whether lower is s lower-cased (ASCII).
func equalLower(lower []byte, s string) bool {
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if lower[i] != c {
			return false
		}
	}
	return true
}

func (m *routeMW) appendVariant(dst []byte, ec echo.Context, pageKey string, nonce uint64, respVary []string) []byte {
	dst = append(dst, pageKey...)
	dst = appendNonce(dst, nonce)
	dst = appendHostPart(dst, ec, m.keying.custom)
	return appendVaryValues(dst, ec.Request().Header, m.vary, respVary)
}

// viewer returns the store as a stores.Viewer when it is in-process and can
// hand out its own bytes, or nil.
func (c *Cache) viewer() stores.Viewer {
	if r := c.store.Load(); r != nil && r.local {
		v, _ := r.s.(stores.Viewer)
		return v
	}
	return nil
}

// storeView is storeGet for callers that never modify the value: with a
// viewer (see Cache.viewer) it reads the store's own bytes instead of a
// copy. (In-process stores get no timeout or breaker from the core, only
// error counting, which is done here too.)
func (c *Cache) storeView(ctx context.Context, viewer stores.Viewer, key string) ([]byte, error) {
	if viewer != nil {
		v, err := viewer.View(ctx, key)
		if err != nil {
			c.localDone(err) // counted and logged like the core's calls
		}
		return v, err
	}
	return c.storeGet(ctx, key)
}

func (m *routeMW) dropCorrupt(ctx context.Context, key string) {
	_ = m.cache.storeDelete(context.WithoutCancel(ctx), strings.Clone(key))
}

// awaitOther waits, after another process took the page's lock, for the
// page to appear in the store, until LockTimeout. done reports whether the
// request was answered (from the store, or with ctx's error).
func (m *routeMW) awaitOther(ec echo.Context, kb *keyBuf, pageKey string, f *routeFlight) (done bool, err error) {
	ctx := ec.Request().Context()
	deadline := time.Now().Add(m.cfg.LockTimeout)
	wait := 5 * time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	if m.st.onWait != nil {
		m.st.onWait()
	}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-t.C:
		}
		now := m.clock()
		var lk lookup
		m.lookup(&lk, ctx, ec, kb, m.cache.viewer(), pageKey, now)
		switch lk.state {
		case lookFresh:
			m.cache.stats.hits.Add(1)
			f.entry = lk.e.raw
			return true, m.serve(ec, &lk.e, StatusHit, now, ec.Response())
		case lookFailed:
			return false, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		wait = min(wait*2, 100*time.Millisecond, left)
		t.Reset(wait)
	}
}

// headerWriter is where a cached response is written: the echo.Response, or
// the writer under it when the response was already committed.
type headerWriter interface {
	WriteHeader(code int)
	Write(b []byte) (int, error)
}

// serve writes a cached entry: its status, headers and body (none for HEAD,
// 304 for a matching If-None-Match), plus the status header and Age.
func (m *routeMW) serve(ec echo.Context, e *entry, status string, now int64, w headerWriter) error {
	req := ec.Request()
	h := ec.Response().Header()
	notModified := false
	if inm := req.Header["If-None-Match"]; len(inm) > 0 && e.status >= 200 && e.status < 300 {
		etag := e.etag()
		notModified = etag != "" && etagMatch(inm, etag)
	}

	vals := make([]string, e.nVals+2)
	if notModified {
		vals = e.applyHeaders(h, vals, keepOn304)
	} else {
		vals = e.applyHeaders(h, vals, nil)
	}
	if m.statusHeader != "" {
		vals[0] = status
		h[m.statusHeader] = vals[0:1:1]
	}
	age := max((now-e.storedAt)/int64(time.Second), 0)
	vals[1] = strconv.FormatInt(age, 10)
	h["Age"] = vals[1:2:2]

	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if req.Method == http.MethodHead {
		// No body follows to let net/http count it.
		if len(h[echo.HeaderContentLength]) == 0 {
			h.Set(echo.HeaderContentLength, strconv.Itoa(len(e.body)))
		}
	}
	w.WriteHeader(e.status)
	if req.Method != http.MethodHead && len(e.body) > 0 {
		if _, err := w.Write(e.body); err != nil {
			return err
		}
	}
	return nil
}

// keepOn304 selects the headers a 304 carries (RFC 9110, 15.4.5).
func keepOn304(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified":
		return true
	}
	return false
}

// etagMatch reports whether an If-None-Match header matches etag, with the
// weak comparison RFC 9110 prescribes for If-None-Match.
func etagMatch(ifNoneMatch []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range ifNoneMatch {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// missParams describes a miss to run.
type missParams struct {
	pageKey  string
	stale    *entry // served on a handler failure (stale-if-error)
	nonce    uint64
	hasNonce bool
	noStore  bool // run and pass through only (HEAD)
	refresh  bool // background refresh: errors are logged
}

// routeRequest is the per-request state SetTTL and Tag reach through the
// echo.Context. Nested route middleware chain theirs through parent.
type routeRequest struct {
	cache  *Cache
	ctx    context.Context
	parent *routeRequest

	ttl    time.Duration
	ttlSet bool
	tags   []tagVersion
	tagErr bool
}

const routeRequestKey = "echocache.routeRequest"

// SetTTL sets how long the response being built is cached, overriding the
// route's TTL (Flask-Caching's CachedResponse). A ttl of 0 means the
// response is not stored; stores.NoExpiry keeps it until deleted. Outside
// cached routes it does nothing.
func SetTTL(c echo.Context, ttl time.Duration) {
	rr, _ := c.Get(routeRequestKey).(*routeRequest)
	for ; rr != nil; rr = rr.parent {
		rr.ttl, rr.ttlSet = ttl, true
	}
}

// Tag attaches tags to the response being built, so that InvalidateTag
// drops it. Tag reads each tag's current version right away: call it
// before reading the data the response is built from, so that an
// invalidation that happens while the response is being built is not lost.
// Outside cached routes it does nothing. If the versions cannot be read
// (store error), the response is not stored.
func Tag(c echo.Context, tags ...string) {
	rr, _ := c.Get(routeRequestKey).(*routeRequest)
	for ; rr != nil; rr = rr.parent {
		tv, err := rr.cache.tagVersions(rr.ctx, tags)
		if err != nil {
			rr.tagErr = true
			continue
		}
		rr.tags = append(rr.tags, tv...)
	}
}

// run runs the handler for a miss, streams its response to the client while
// capturing it, and stores it when every rule allows. f, when not nil, is
// the in-process flight to publish the stored entry to.
func (m *routeMW) run(ec echo.Context, next echo.HandlerFunc, p missParams, f *routeFlight) error {
	c := m.cache
	res := ec.Response()
	h := res.Header()
	if m.statusHeader != "" && !p.refresh {
		h.Set(m.statusHeader, StatusMiss)
	}
	if p.noStore && p.stale == nil {
		return next(ec)
	}
	before := h.Clone()
	parent, _ := ec.Get(routeRequestKey).(*routeRequest)
	rr := &routeRequest{cache: c, ctx: ec.Request().Context(), parent: parent}
	ec.Set(routeRequestKey, rr)
	orig := res.Writer
	cw := &captureWriter{
		ResponseWriter: orig,
		before:         before,
		max:            m.cfg.MaxBodySize,
		hold:           p.stale != nil,
		statusHeader:   m.statusHeader,
	}
	res.Writer = cw
	finished := false
	defer func() {
		res.Writer = orig
		ec.Set(routeRequestKey, parent)
		if !finished {
			c.countBypass(BypassPanic) // the panic goes on up the chain
		}
	}()
	err := next(ec)
	finished = true

	if p.stale != nil && (cw.held || err != nil && !cw.wroteHeader && isFailure(err)) {
		// stale-if-error: the client gets the stale page, not the failure.
		c.stats.stale.Add(1)
		res.Writer = orig
		resetHeader(h, before)
		var w headerWriter = res
		if res.Committed {
			// The held 5xx committed the echo.Response but reached nobody.
			w = orig
			res.Status, res.Size = p.stale.status, int64(len(p.stale.body))
		}
		return m.serve(ec, p.stale, StatusStale, m.clock(), w)
	}
	if cw.held {
		cw.release()
	}
	if err != nil {
		c.countBypass(BypassError)
		if p.refresh {
			c.logf("background refresh of %s: %v", ec.Request().URL, err)
		}
		return err
	}
	if p.noStore {
		return nil
	}
	if reason := m.storable(ec, cw, rr); reason != "" {
		c.countBypass(reason)
		return nil
	}
	rec, variantKey, ttl := m.entryFor(ec, p, cw, rr)
	if f != nil {
		f.entry = rec
	}
	// The page record and the variant record are the same bytes; see keys.go.
	items := map[string][]byte{p.pageKey: rec, variantKey: rec}
	if err := c.storeSetMany(context.WithoutCancel(ec.Request().Context()), items, ttl); err == nil {
		c.stats.stores.Add(1)
	}
	return nil
}

// isFailure reports whether a handler error is a failure stale-if-error
// covers: anything but an echo.HTTPError below 500 (a 404 is an answer).
func isFailure(err error) bool {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code >= 500
	}
	return true
}

// resetHeader makes h what it was in before.
func resetHeader(h, before http.Header) {
	for k := range h {
		if _, ok := before[k]; !ok {
			delete(h, k)
		}
	}
	for k, v := range before {
		h[k] = v
	}
}

// storable returns why a captured response must not be stored, or "".
func (m *routeMW) storable(ec echo.Context, cw *captureWriter, rr *routeRequest) string {
	switch {
	case cw.hijacked:
		return BypassHijacked
	case !cw.wroteHeader:
		return BypassNoResponse
	case !slices.Contains(m.cfg.AllowedStatuses, cw.status):
		return BypassStatus
	case cw.setCookie:
		return BypassSetCookie
	case cw.varyStar:
		return BypassVary
	case cacheControlForbids(cw.cacheControl):
		return BypassCacheControl
	case cw.overflow || int64(len(cw.body)) > math.MaxUint32:
		return BypassTooLarge
	case rr.tagErr:
		return BypassTagError
	case !replayable(cw.captured):
		return BypassBadHeader
	}
	if ttl := m.ttlOf(cw, rr); ttl == 0 {
		return BypassTTL
	}
	if m.cfg.ResponseFilter != nil && !m.cfg.ResponseFilter(ec, cw.status, ec.Response().Header()) {
		return BypassFilter
	}
	return ""
}

// replayable reports whether every header would decode from an entry.
func replayable(h http.Header) bool {
	for k, vs := range h {
		if !validHeaderName([]byte(k)) {
			return false
		}
		for _, v := range vs {
			if !validHeaderValue([]byte(v)) {
				return false
			}
		}
	}
	return true
}

// ttlOf resolves a response's TTL: SetTTL, then Cache-Control when enabled,
// then the route's TTL, then the Cache's default. 0 means do not store.
func (m *routeMW) ttlOf(cw *captureWriter, rr *routeRequest) time.Duration {
	if rr.ttlSet {
		return rr.ttl
	}
	if m.cfg.TTLFromCacheControl {
		if d, ok := cacheControlTTL(cw.cacheControl); ok {
			return d
		}
	}
	return m.cache.ttl(m.cfg.TTL)
}

// entryFor encodes the entry of a storable response and returns it with its
// variant key and store TTL.
func (m *routeMW) entryFor(ec echo.Context, p missParams, cw *captureWriter, rr *routeRequest) ([]byte, string, time.Duration) {
	nonce := p.nonce
	if !p.hasNonce {
		nonce = rand.Uint64()
	}
	ttl := m.ttlOf(cw, rr)
	now := time.Now().UnixNano()
	if m.cfg.now != nil {
		now = m.cfg.now().UnixNano()
	}
	fresh := int64(math.MaxInt64)
	storeTTL := stores.NoExpiry
	if ttl > 0 {
		fresh = addSat(now, int64(ttl))
		storeTTL = ttl + max(m.cfg.StaleWhileRevalidate, m.cfg.StaleIfError)
	}
	header := cw.captured
	if !hasHeader(header, headerETag) {
		// A strong validator of the stored body, computed once here and
		// never on a hit.
		sum := sha256.Sum256(cw.body)
		header[headerETag] = []string{`"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
	}
	kb := keyBufPool.Get().(*keyBuf)
	defer keyBufPool.Put(kb)
	kb.b = m.appendVariant(kb.b[:0], ec, p.pageKey, nonce, cw.vary)
	rec := encodeEntry(&entryData{
		nonce:      nonce,
		key:        kb.b,
		storedAt:   now,
		freshUntil: fresh,
		swrUntil:   addSat(fresh, int64(m.cfg.StaleWhileRevalidate)),
		sieUntil:   addSat(fresh, int64(m.cfg.StaleIfError)),
		status:     cw.status,
		vary:       cw.vary,
		tags:       rr.tags,
		header:     header,
		body:       cw.body,
	})
	return rec, string(kb.b), storeTTL
}

// hasHeader looks name up case-insensitively, for headers a handler set
// on the map directly.
func hasHeader(h http.Header, name string) bool {
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// cacheControlForbids reports no-store, private or no-cache.
func cacheControlForbids(values []string) bool {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "private", "no-cache":
				return true
			}
		}
	}
	return false
}

// cacheControlTTL returns s-maxage, or else max-age, of a Cache-Control.
func cacheControlTTL(values []string) (time.Duration, bool) {
	maxAge, sMaxAge := -1, -1
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n < 0 {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "s-maxage":
				sMaxAge = n
			case "max-age":
				maxAge = n
			}
		}
	}
	switch {
	case sMaxAge >= 0:
		return time.Duration(sMaxAge) * time.Second, true
	case maxAge >= 0:
		return time.Duration(maxAge) * time.Second, true
	}
	return 0, false
}

// refresh starts one background refresh of a stale page: the handler runs
// on a copy of the request, detached from the client, with a recorder as
// its response writer.
func (m *routeMW) refresh(ec echo.Context, next echo.HandlerFunc, pageKey string, nonce uint64, variantKey string) {
	if _, running := m.st.refreshs.LoadOrStore(variantKey, struct{}{}); running {
		return
	}
	e := ec.Echo()
	req := ec.Request()
	base := context.WithoutCancel(req.Context())
	r2 := req.Clone(base)
	r2.Method = http.MethodGet
	r2.Body, r2.ContentLength = http.NoBody, 0
	routePath := ec.Path()
	names := slices.Clone(ec.ParamNames())
	values := slices.Clone(ec.ParamValues())
	// The echo.Context goes back to Echo's pool when this request ends, so
	// everything the refresh needs is copied above.
	go func() {
		defer func() {
			if r := recover(); r != nil {
				m.cache.logf("background refresh of %s panicked: %v", r2.URL, r)
			}
			m.st.refreshs.Delete(variantKey)
			if m.st.refreshDone != nil {
				m.st.refreshDone()
			}
		}()
		ctx, cancel := context.WithTimeout(base, m.cfg.RefreshTimeout)
		defer cancel()
		if m.cfg.LockTimeout > 0 {
			release, acquired := m.cache.lock(ctx, "refresh:"+variantKey, m.cfg.LockTimeout)
			if !acquired {
				return // another process refreshes it
			}
			defer release()
		}
		rec := &refreshRecorder{header: http.Header{}}
		nc := e.NewContext(r2.WithContext(ctx), rec)
		nc.SetPath(routePath)
		nc.SetParamNames(names...)
		nc.SetParamValues(values...)
		_ = m.run(nc, next, missParams{pageKey: pageKey, nonce: nonce, hasNonce: true, refresh: true}, nil)
	}()
}

// refreshRecorder is the response writer of a background refresh: the
// capture writer above it keeps the body; the rest is dropped.
type refreshRecorder struct {
	header http.Header
}

func (r *refreshRecorder) Header() http.Header         { return r.header }
func (r *refreshRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *refreshRecorder) WriteHeader(int)             {}

// captureWriter is the response writer of a miss: it passes the response
// to the client and keeps a copy of it (status, the headers the handler
// set, and the body up to max bytes). With hold set it keeps a 5xx response
// back, so that a stale page can be served in its place.
type captureWriter struct {
	http.ResponseWriter
	before       http.Header // the header before the handler ran
	max          int64
	hold         bool
	statusHeader string

	wroteHeader bool
	held        bool
	hijacked    bool
	overflow    bool
	status      int
	body        []byte

	// Captured when the header was written.
	captured     http.Header // what the handler added or changed
	cacheControl []string
	vary         []string
	varyStar     bool
	setCookie    bool
}

// notStored are never stored: per-connection, per-message or ours.
var notStored = map[string]bool{
	"Age": true, "Date": true, "Set-Cookie": true, "Content-Length": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

func (w *captureWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.ResponseWriter.Header()
	w.captured = http.Header{}
	for k, vs := range h {
		if notStored[textproto.CanonicalMIMEHeaderKey(k)] || k == w.statusHeader {
			continue
		}
		if b, ok := w.before[k]; ok && slices.Equal(b, vs) {
			continue
		}
		w.captured[k] = slices.Clone(vs)
	}
	w.cacheControl = slices.Clone(h[echo.HeaderCacheControl])
	w.setCookie = len(h[echo.HeaderSetCookie]) > 0
	w.vary, w.varyStar = responseVary(h)
	if w.hold && code >= 500 {
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.overflow {
		if int64(len(w.body))+int64(len(b)) > w.max {
			if w.held {
				w.release()
			}
			w.overflow, w.body = true, nil
		} else {
			w.body = append(w.body, b...)
			if w.held {
				return len(b), nil
			}
		}
	}
	return w.ResponseWriter.Write(b)
}

// release sends a held response on after all.
func (w *captureWriter) release() {
	w.held = false
	w.ResponseWriter.WriteHeader(w.status)
	if len(w.body) > 0 {
		_, _ = w.ResponseWriter.Write(w.body)
	}
}

// FlushError flushes the response; a held response is released first.
func (w *captureWriter) FlushError() error {
	if w.held {
		w.release()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *captureWriter) Flush() {
	if err := w.FlushError(); err != nil && errors.Is(err, http.ErrNotSupported) {
		panic(errors.New("echocache: response writer flushing is not supported"))
	}
}

// Hijack implements http.Hijacker; a hijacked response is not stored.
func (w *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *captureWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

const headerETag = "Etag"

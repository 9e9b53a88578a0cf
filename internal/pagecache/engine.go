// Package pagecache is the page-caching engine behind every route cache
// front end of this module: echocache (Echo v4), echocache/echov5 (Echo
// v5) and echocache/httpcache (net/http). It works on *http.Request and
// http.ResponseWriter; what differs between frameworks (how a request's
// handler is run, its error is judged, its route answers HEAD, its skipper
// and key function are called) reaches it through a [Frontend].
//
// The HTTP rules live here once: keys (keys.go), the stored entry
// (entry.go), header names in any case (header.go), the hit path (hit.go),
// the miss path and the rules that decide whether a response is stored
// (miss.go), the capture writer (writer.go), stale-while-revalidate
// (stale.go), tags (tags.go), SetTTL and Tag through the request's
// context (request.go), and the state every route of a cache shares, with
// its test hooks (state.go). Each request's outcome is decided in
// [Route.Handle] (bypass, hit, stale, store failure) and in Route.miss and
// Route.run (not stored, and why; stored); the bypasses before a lookup go
// through Route.bypass, and every store write of a page through
// Engine.store.
//
// It is internal: the public route API is each front end's RouteConfig.
package pagecache

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

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// Defaults of a route (echocache documents and exports them).
const (
	DefaultMaxBodySize    = 512 << 10
	DefaultStatusHeader   = "X-Cache"
	DefaultRefreshTimeout = 30 * time.Second
)

// DefaultIgnoreQueryParams are the query parameters left out of page keys
// by default (echocache.DefaultIgnoreQueryParams is this slice).
var DefaultIgnoreQueryParams = []string{"utm_*", "fbclid", "gclid"}

// Values of the status header.
const (
	StatusHit   = "HIT"
	StatusMiss  = "MISS"
	StatusStale = "STALE"
)

// Config is a route's configuration without its framework's shapes: the
// fields of echocache.RouteConfig that every front end shares, which
// document them. Zero values mean the defaults there.
type Config struct {
	Cache                *core.Cache // required
	TTL                  time.Duration
	KeyPrefix            string
	CustomKey            bool // the front end's Key gives page keys (a KeyFunc)
	IgnoreQueryParams    []string
	DropQuery            bool
	VaryHeaders          []string
	AllowedStatuses      []int
	MaxBodySize          int64
	AllowAuthorization   bool
	Filter               bool // the front end's Filter decides (a ResponseFilter)
	TTLFromCacheControl  bool
	StatusHeader         string // "-": none
	CacheStatusName      string // "" DefaultCacheStatusName, "-": no Cache-Status
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	LockTimeout          time.Duration
	RefreshTimeout       time.Duration
}

// Frontend is what the engine needs of a framework, for requests of type
// C (echo.Context, *echo.Context, or net/http's writer and request). A
// front end makes one per handler it wraps (it knows that handler, the
// "next" of middleware). Its methods are called on the request's
// goroutine, except a Detach result's, which a background refresh calls.
type Frontend[C any] interface {
	// Skip reports whether the request bypasses the cache entirely (the
	// Skipper).
	Skip(c C) bool
	// AdoptLogger gives the cache the framework's logger; called only
	// while the cache has none.
	AdoptLogger(c C)
	// Request returns the request c answers.
	Request(c C) *http.Request
	// ServesHead reports whether the route answers a HEAD request with
	// what it answers the GET (the router sent the HEAD to the same
	// route).
	ServesHead(c C) bool
	// Key returns the page key of a route with a key function; "" bypasses
	// the cache. Only called when Config.CustomKey is set.
	Key(c C) string
	// Scheme returns the request's scheme ("http", "https"), as the
	// framework reads it (TLS, X-Forwarded-Proto ...).
	Scheme(c C, r *http.Request) string
	// Pass runs the handler as it is, uncached.
	Pass(c C) error
	// Writer returns the writer a stored page is written to.
	Writer(c C) http.ResponseWriter
	// Inner returns the writer the capture writer of a miss passes the
	// response on to.
	Inner(c C) http.ResponseWriter
	// Run runs the handler with r as its request and w (the capture
	// writer, which wraps Inner) in place of Inner, and puts both back
	// afterwards (also on a panic). It returns the request as the handler
	// left it (middleware inside may have replaced it) and the handler's
	// error.
	Run(c C, r *http.Request, w http.ResponseWriter) (*http.Request, error)
	// Failure reports whether a handler error is a failure (the framework
	// answers it with a 5xx) rather than an answer such as a 404.
	Failure(err error) bool
	// Filter is the ResponseFilter; only called when Config.Filter is set.
	Filter(c C, status int, h http.Header) bool
	// StaleWriter returns the writer a stale page replacing a held failure
	// is written to, after Run; status and size are the stale page's, for
	// a framework response that counted the held failure as written.
	StaleWriter(c C, status int, size int64) http.ResponseWriter
	// Detach copies what a background refresh of c's page needs (the
	// route, its path parameters) and returns a function that makes a new
	// request value for r and w on another goroutine, after c's request
	// has ended.
	Detach(c C) func(r *http.Request, w http.ResponseWriter) C
}

// Engine is one route configuration, validated and resolved once. It is
// safe for concurrent use.
type Engine struct {
	cfg          Config
	cache        *core.Cache
	keying       keying
	vary         []string
	statusHeader string
	cs           *cacheStatus // nil: no Cache-Status
	st           *state
}

// Route is an engine serving one handler through its front end.
type Route[C any] struct {
	*Engine
	fe Frontend[C]
}

// NewRoute returns e serving requests of fe.
func NewRoute[C any](e *Engine, fe Frontend[C]) *Route[C] {
	return &Route[C]{Engine: e, fe: fe}
}

// New validates cfg and returns its engine. Its errors name the
// RouteConfig field at fault, prefixed "echocache: ".
func New(cfg Config) (*Engine, error) {
	if cfg.Cache == nil {
		return nil, errors.New("echocache: RouteConfig.Cache is required")
	}
	if cfg.TTL < 0 && cfg.TTL != stores.NoExpiry {
		return nil, fmt.Errorf("echocache: RouteConfig.TTL %v is negative (use stores.NoExpiry for no expiry)", cfg.TTL)
	}
	if cfg.KeyPrefix != "" && cfg.CustomKey {
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
		switch {
		case s < 100 || s > 999:
			return nil, fmt.Errorf("echocache: RouteConfig.AllowedStatuses: bad status %d", s)
		case s < 200:
			return nil, fmt.Errorf("echocache: RouteConfig.AllowedStatuses: %d is informational, not a final response", s)
		case s == http.StatusPartialContent || s == http.StatusNotModified || s == http.StatusRequestedRangeNotSatisfiable:
			return nil, fmt.Errorf("echocache: RouteConfig.AllowedStatuses: %d answers a range or conditional request, never the whole page", s)
		}
	}
	if cfg.MaxBodySize == 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	m := &Engine{
		cache: cfg.Cache,
		keying: keying{
			prefix:    cfg.KeyPrefix,
			ignore:    compileIgnore(cfg.IgnoreQueryParams),
			dropQuery: cfg.DropQuery,
			custom:    cfg.CustomKey,
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
	switch cfg.CacheStatusName {
	case "":
		m.cs = newCacheStatus(DefaultCacheStatusName)
	case "-":
	default:
		if !core.ValidCacheStatusName(cfg.CacheStatusName) {
			return nil, fmt.Errorf("echocache: RouteConfig.CacheStatusName %q: a cache name in Cache-Status is printable ASCII", cfg.CacheStatusName)
		}
		m.cs = newCacheStatus(cfg.CacheStatusName)
	}
	if m.cs != nil && m.statusHeader == headerCacheStatus {
		return nil, errors.New(`echocache: RouteConfig.StatusHeader "Cache-Status" is the RFC 9211 header the route writes itself (see CacheStatusName); name another header`)
	}
	m.cfg = cfg
	m.st = stateOf(cfg.Cache)
	m.st.addKeying(m.keying)
	return m, nil
}

// clock returns the time a lookup compares entries with, in unix
// nanoseconds (the test clock when one is set).
func (m *Engine) clock() int64 {
	if now := m.st.hooks.Now; now != nil {
		return now().UnixNano()
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
	vary     []string // the page record's Vary names, when it is another variant
	err      error    // why, when state is lookFailed
	expired  bool     // an entry was found but is past its lifetime or its tags'
	otherURI bool     // the page record found is another scheme's or host's
	local    bool     // the entry was read from a networked store's copy in the process (a local tier)
	atPage   bool     // the entry found is the page record: the request's variant lives under the page key
	corrupt  bool     // a record found did not decode and was dropped (DetailCorrupt)
}

// bypass runs the handler uncached for reason, a lookup not made.
func (r *Route[C]) bypass(c C, reason string) error {
	r.cache.CountLookup(r.fe.Request(c).Context(), core.FeaturePage, core.ResultBypass, reason)
	return r.pass(c, nil, r.cs.passed(core.ResultBypass, reason))
}

// Handle answers one request: the checks that bypass the cache, the key,
// the lookup (hit.go), and the hand-over to a miss (miss.go).
func (r *Route[C]) Handle(c C) error {
	m, fe := r.Engine, r.fe
	cc := m.cache
	if fe.Skip(c) {
		return r.bypass(c, BypassSkipper)
	}
	if !cc.HasStore() {
		return r.bypass(c, BypassNoStore)
	}
	if !cc.HasLogger() {
		fe.AdoptLogger(c)
	}
	req := fe.Request(c)
	if req.Method != http.MethodGet && (req.Method != http.MethodHead || !fe.ServesHead(c)) {
		return r.bypass(c, BypassMethod)
	}
	if req.ContentLength != 0 {
		return r.bypass(c, BypassBody)
	}
	auth, inm := hitHeaders(req.Header)
	if auth && !m.cfg.AllowAuthorization {
		return r.bypass(c, BypassAuthorization)
	}

	// One store budget for the whole request: its lookups, its tags, the
	// miss's lock and its wait for another process, and the handler's own
	// calls to the Cache. (A page's write, after the response, has its own
	// timeout.)
	ctx := cc.WithBudget(req.Context())

	kb := keyBufPool.Get().(*keyBuf)
	defer keyBufPool.Put(kb)
	if m.keying.custom {
		k := fe.Key(c)
		if k == "" {
			return r.bypass(c, BypassKey)
		}
		kb.b = appendCustomPageKey(kb.b[:0], k)
	} else {
		kb.b = m.keying.appendPageKey(kb.b[:0], req.URL.EscapedPath(), req.URL.RawQuery)
	}
	// On an in-process store that hands out its bytes, the lookup needs no
	// key string of its own: it views kb, which stays unchanged until the
	// key is cloned below, before anything can keep it.
	viewer := cc.Viewer()
	viewed := viewer != nil
	var pageKey string
	if viewed {
		pageKey = bstr(kb.b)
	} else {
		pageKey = string(kb.b)
	}
	now := m.clock()

	var lk lookup
	e := r.lookup(&lk, ctx, c, req, kb, viewer, pageKey, now)
	if lk.state == lookFresh {
		cc.CountLookup(req.Context(), core.FeaturePage, core.ResultHit, "")
		return r.serve(req, inm, fe.Writer(c), e, StatusHit, m.cs.hit(e, now, lk.local), now)
	}
	if ctx != req.Context() {
		req = req.WithContext(ctx) // the rest of the request spends the same budget
	}
	if viewed {
		pageKey = strings.Clone(pageKey)
	}
	switch lk.state {
	case lookStale:
		cc.CountLookup(req.Context(), core.FeaturePage, core.ResultStale, "")
		r.refresh(c, m.keying.withoutIgnored(req), pageKey, e, lk.atPage)
		return r.serve(req, inm, fe.Writer(c), e, StatusStale, m.cs.hit(e, now, lk.local), now)
	case lookFailed:
		// Fail open: the core has counted and logged the store error; the
		// lookup counts as a miss and an error.
		res, detail := core.LookupFailure(req.Context(), lk.err)
		cc.CountLookup(req.Context(), core.FeaturePage, res, detail)
		if errors.Is(lk.err, core.ErrCallerGone) {
			return req.Context().Err() // the request ended: nobody would get the handler's answer
		}
		if m.statusHeader != "" {
			fe.Writer(c).Header().Set(m.statusHeader, StatusMiss)
		}
		return r.pass(c, req, m.cs.passed(res, detail)) // with what the budget has left
	}

	// The handler of a page to be stored sees the request without the
	// query parameters its key ignores (keys.go, withoutIgnored).
	return r.miss(c, m.keying.withoutIgnored(req), kb, pageKey, &lk, e)
}

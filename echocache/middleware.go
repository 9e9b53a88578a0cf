package echocache

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// The route middleware's entry point (handle): the checks that bypass the
// cache, the key, the lookup (hit.go), and the hand-over to a miss
// (miss.go). Its config is in route.go.

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
	vary     []string // the page record's Vary names, when it is another variant
}

// handle is the middleware.
func (m *routeMW) handle(ec echo.Context, next echo.HandlerFunc) error {
	c := m.cache
	if m.cfg.Skipper(ec) {
		c.countBypass(BypassSkipper)
		return next(ec)
	}
	if !c.core().HasStore() {
		c.countBypass(BypassNoStore)
		return next(ec)
	}
	c.adoptEchoLogger(ec)
	req := ec.Request()
	if req.Method != http.MethodGet && (req.Method != http.MethodHead || !servesHead(ec)) {
		c.countBypass(BypassMethod)
		return next(ec)
	}
	if req.ContentLength != 0 {
		c.countBypass(BypassBody)
		return next(ec)
	}
	if !m.cfg.AllowAuthorization && len(req.Header[echo.HeaderAuthorization]) > 0 {
		c.countBypass(BypassAuthorization)
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
	viewer := c.core().Viewer()
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
		c.core().Counters().Hits.Add(1)
		return m.serve(ec, e, StatusHit, now, ec.Response())
	}
	if viewed {
		pageKey = strings.Clone(pageKey)
	}
	switch lk.state {
	case lookStale:
		c.core().Counters().Stale.Add(1)
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

// servesHead reports whether Echo routed a HEAD request to the route its
// GET goes to, so that the GET's page is what the route would answer. A
// route registered for GET only gets Echo's 405 handler for HEAD (with the
// Allow list in the context), or, in a group with middleware, the group's
// catch-all 404; a request before routing (e.Pre) or that matched no
// route has no path. Answering any of those from the cache would change
// what the route answers. It routes the request once more, for HEAD only.
func servesHead(ec echo.Context) bool {
	e := ec.Echo()
	if e == nil || ec.Path() == "" || ec.Get(echo.ContextKeyHeaderAllow) != nil {
		return false
	}
	req := ec.Request()
	router := e.Router()
	if hosts := e.Routers(); len(hosts) > 0 {
		if r, ok := hosts[req.Host]; ok {
			router = r
		}
	}
	probe := e.NewContext(req, nil)
	router.Find(http.MethodGet, echo.GetPath(req), probe)
	return probe.Path() == ec.Path()
}

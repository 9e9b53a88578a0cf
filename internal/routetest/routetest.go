// Package routetest is the HTTP behaviour suite of the route cache, run by
// every front end of the page engine (echocache for Echo v4,
// echocache/echov5, echocache/httpcache) from one table: keys, Vary,
// Authorization, Set-Cookie, statuses, ETag and 304, HEAD, the rules for
// complete answers, stale pages, tags, invalidation and stampedes. Each
// front end's tests give it a small [Frontend] that builds an app of
// routes from a neutral [Config] and [Handler]; nothing here knows a
// framework.
package routetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// Ctx is a request as a suite handler sees it.
type Ctx interface {
	Request() *http.Request
	Response() http.ResponseWriter
	SetTTL(ttl time.Duration) // the front end's SetTTL
	Tag(tags ...string)       // the front end's Tag
}

// Handler is a suite handler. A front end whose handlers return errors
// passes the error on to its framework; net/http answers it as Echo's
// default error handler would: the [StatusError]'s status, else 500.
type Handler func(c Ctx) error

// StatusError is a handler error with an HTTP status (echo.HTTPError).
type StatusError int

func (e StatusError) Error() string { return http.StatusText(int(e)) }

// Config is a route config without a framework: the RouteConfig fields
// the front ends share, with the request for the framework's context.
type Config struct {
	Skipper              func(r *http.Request) bool
	TTL                  time.Duration
	KeyPrefix            string
	KeyFunc              func(r *http.Request) string
	IgnoreQueryParams    []string
	DropQuery            bool
	VaryHeaders          []string
	AllowedStatuses      []int
	MaxBodySize          int64
	AllowAuthorization   bool
	ResponseFilter       func(r *http.Request, status int, h http.Header) bool
	TTLFromCacheControl  bool
	StatusHeader         string
	CacheStatusName      string
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	LockTimeout          time.Duration

	// Outer is middleware outside the route cache, run before it on every
	// request: it may set response headers on w and change r's headers in
	// place. The Echo front ends parse the query (c.QueryParams) before
	// calling it, as analytics middleware would: Echo keeps it.
	Outer func(w http.ResponseWriter, r *http.Request)
	// RecoverInside puts the front end's recovering middleware between the
	// route cache and the handler: Echo's middleware.Recover; for net/http
	// one that answers 500 as chi's Recoverer does.
	RecoverInside bool
}

// Frontend builds apps of one front end.
type Frontend interface {
	// NewApp returns an empty app whose routes cache in c.
	NewApp(t testing.TB, c *echocache.Cache) App
}

// App is an app of a front end.
type App interface {
	http.Handler
	// Route serves every method of path with h, cached with cfg. A path
	// ending in "/*" serves every path below.
	Route(path string, cfg Config, h Handler)
}

// Run runs the suite on fe, over the memory store and redis.
func Run(t *testing.T, fe Frontend) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			open := func(t *testing.T) *echocache.Cache { return echocache.New(openStore(t, store)) }
			t.Run("table", func(t *testing.T) { runTable(t, fe, open) })
			t.Run("keys", func(t *testing.T) { runKeys(t, fe, open) })
			t.Run("rules", func(t *testing.T) { runRules(t, fe, open) })
			t.Run("variants", func(t *testing.T) { variants(t, fe, open(t)) })
			t.Run("cut-short", func(t *testing.T) { cutShort(t, fe, open) })
			t.Run("conditional", func(t *testing.T) { conditional(t, fe, open(t)) })
			t.Run("stale-while-revalidate", func(t *testing.T) { staleWhileRevalidate(t, fe, open(t)) })
			t.Run("invalidation", func(t *testing.T) { invalidation(t, fe, open(t)) })
			t.Run("stampede", func(t *testing.T) { stampede(t, fe, open(t)) })
			t.Run("stampede-share", func(t *testing.T) { stampedeShare(t, fe, open) })
			t.Run("stampede-handoff", func(t *testing.T) { stampedeHandoff(t, fe, open) })
			t.Run("stampede-leader-gone", func(t *testing.T) { stampedeLeaderGone(t, fe, open) })
			t.Run("stampede-per-variant", func(t *testing.T) { stampedePerVariant(t, fe, open) })
			t.Run("stampede-waiter-cancelled", func(t *testing.T) { stampedeWaiterCancelled(t, fe, open) })
			t.Run("stampede-authorization", func(t *testing.T) { stampedeAuthorization(t, fe, open) })
			t.Run("stampede-pass-mark", func(t *testing.T) { stampedePassMark(t, fe, open) })
			t.Run("declared-length", func(t *testing.T) { declaredLength(t, fe, open) })
			t.Run("failure-after-writing", func(t *testing.T) { failureAfterWriting(t, fe, open) })
			t.Run("trailers", func(t *testing.T) { trailers(t, fe, open) })
			t.Run("header-case", func(t *testing.T) { headerCase(t, fe, open) })
			t.Run("context-ended", func(t *testing.T) { contextEnded(t, fe, open) })
			t.Run("head-from-get", func(t *testing.T) { headFromGet(t, fe, open) })
			t.Run("declared-hit-length", func(t *testing.T) { declaredHitLength(t, fe, open) })
			t.Run("informational", func(t *testing.T) { informational(t, fe, open) })
			t.Run("ignored-query", func(t *testing.T) { ignoredQuery(t, fe, open) })
			t.Run("ignored-query-refresh", func(t *testing.T) { ignoredQueryRefresh(t, fe, open) })
		})
	}
	t.Run("lock-pass", func(t *testing.T) { lockPass(t, fe) })
	t.Run("store-failures", func(t *testing.T) { storeFailures(t, fe) })
	t.Run("compressed", func(t *testing.T) { compressed(t, fe) })
	t.Run("writes", func(t *testing.T) { writes(t, fe) })
	t.Run("corrupt-entries", func(t *testing.T) { corruptEntries(t, fe) })
	t.Run("writer-flush", func(t *testing.T) { writerFlush(t, fe) })
	t.Run("writer-hijack", func(t *testing.T) { writerHijack(t, fe) })
	t.Run("memo-concurrent", func(t *testing.T) { memoConcurrent(t, fe) })
	t.Run("failed-refreshes", func(t *testing.T) { failedRefreshes(t, fe) })
}

func openStore(t *testing.T, name string) stores.Store {
	t.Helper()
	var s stores.Store
	var err error
	switch name {
	case "memory":
		s, err = stores.NewMemory(stores.MemoryConfig{})
	case "redis":
		var raw [6]byte
		_, _ = rand.Read(raw[:])
		u := servertest.Redis(t)
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		s, err = stores.Open(context.Background(), u+sep+"prefix=routetest-"+hex.EncodeToString(raw[:])+":")
	}
	if err != nil {
		t.Fatalf("open %s store: %v", name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// settle waits for the page writes of c under way (they follow their
// responses), before a test reads the statistics or the store.
func settle(t testing.TB, c *echocache.Cache) {
	t.Helper()
	if err := c.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// clock is the suite's clock, installed in a cache's routes.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(c *echocache.Cache) *clock {
	k := &clock{now: time.Unix(1_700_000_000, 0)}
	pagecache.HooksOf((*core.Cache)(c)).Now = k.Now
	return k
}

func (k *clock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.now
}

func (k *clock) Advance(d time.Duration) {
	k.mu.Lock()
	k.now = k.now.Add(d)
	k.mu.Unlock()
}

// Step is one request of a case and what its response must be.
type Step struct {
	Method  string        // default GET
	Target  string        // default "/p"
	Header  []string      // name/value pairs; "Host" sets the host
	Advance time.Duration // clock advance before the request

	Status int    // default 200
	Cache  string // the X-Cache value; "" means absent
	// CS is the Cache-Status value, its field lines joined with ", "; ""
	// means absent. Where the front ends answer a handler error apart
	// (Echo's error handler writes after the middleware, a net/http
	// handler inside it), it lists the values allowed, separated by " | ".
	CS     string
	Body   string            // exact body; "" skips the check
	NoBody bool              // the body must be empty
	Want   map[string]string // response headers that must have these values ("" for absent)
	Calls  int64             // handler runs so far; 0 skips the check
	// Settle waits, after the request, for the page writes and background
	// refreshes it started (Cache.Flush).
	Settle bool
}

// Case is a route and the requests sent to it, in order.
type Case struct {
	Name    string
	Config  Config
	Handler func(calls int64, c Ctx) error // calls counts this run
	Steps   []Step
}

// page answers "page <path> #<calls>".
func page(calls int64, c Ctx) error {
	c.Response().Header().Set("Content-Type", "text/plain; charset=UTF-8")
	c.Response().WriteHeader(http.StatusOK)
	_, err := fmt.Fprintf(c.Response(), "page %s #%d", c.Request().URL.Path, calls)
	return err
}

// with returns page with a header set first.
func with(name, value string) func(int64, Ctx) error {
	return func(calls int64, c Ctx) error {
		c.Response().Header().Set(name, value)
		return page(calls, c)
	}
}

// status answers page with another status.
func status(code int) func(int64, Ctx) error {
	return func(calls int64, c Ctx) error {
		c.Response().WriteHeader(code)
		_, err := fmt.Fprintf(c.Response(), "page %s #%d", c.Request().URL.Path, calls)
		return err
	}
}

const minute = time.Minute

// The Cache-Status members of the route cache, named DefaultCacheStatusName
// (RFC 9211): a miss stored for a minute, a hit, and the members of the
// responses not stored.
const (
	storedMinute = "echocache; fwd=uri-miss; ttl=60; stored"
	hitMinute    = "echocache; hit; ttl=60"
)

// cs is the route cache's member with params.
func cs(params string) string { return "echocache; " + params }

// notStored is the member of a miss not stored for reason.
func notStored(reason echocache.BypassReason) string {
	return cs("fwd=uri-miss; detail=" + string(reason))
}

// Cases is the table of the suite.
var Cases = []Case{
	{Name: "ok, a miss is stored and served as a hit with Age and a strong ETag", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Cache: "MISS", CS: storedMinute, Body: "page /p #1", Want: map[string]string{"Age": ""}},
		{Advance: 3 * time.Second, Cache: "HIT", CS: cs("hit; ttl=57"), Body: "page /p #1", Calls: 1,
			Want: map[string]string{"Age": "3", "Content-Type": "text/plain; charset=UTF-8"}},
	}},
	{Name: "ok, a page expires after its TTL", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Cache: "MISS", CS: storedMinute},
		{Advance: minute - time.Millisecond, Cache: "HIT", CS: cs("hit; ttl=0")},
		{Advance: time.Millisecond, Cache: "MISS", CS: cs("fwd=stale; ttl=60; stored"), Body: "page /p #2"},
	}},
	{Name: "ok, the query is canonical: order, encoding and trackers do not matter", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Target: "/p?b=2&a=1", Cache: "MISS", CS: storedMinute},
		{Target: "/p?a=%31&b=2&utm_source=x", Cache: "HIT", CS: hitMinute, Calls: 1},
		{Target: "/p?a=1&b=3", Cache: "MISS", CS: storedMinute, Calls: 2},
	}},
	{Name: "ok, DropQuery keys the path only", Config: Config{TTL: minute, DropQuery: true}, Handler: page, Steps: []Step{
		{Target: "/p?a=1", Cache: "MISS", CS: storedMinute},
		{Target: "/p?a=2", Cache: "HIT", CS: hitMinute, Calls: 1},
	}},
	{Name: "ok, hosts are pages of their own", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Header: []string{"Host", "a.example"}, Cache: "MISS", CS: storedMinute},
		{Header: []string{"Host", "b.example"}, Cache: "MISS", CS: storedMinute, Calls: 2},
		{Header: []string{"Host", "A.EXAMPLE"}, Cache: "HIT", CS: hitMinute, Calls: 2},
	}},
	{Name: "ok, a KeyFunc key ignores path and host", Config: Config{TTL: minute, KeyFunc: func(r *http.Request) string { return r.URL.Query().Get("k") }}, Handler: page, Steps: []Step{
		{Target: "/p?k=one&x=1", Cache: "MISS", CS: storedMinute},
		{Target: "/p?k=one&x=2", Header: []string{"Host", "b.example"}, Cache: "HIT", CS: hitMinute, Calls: 1},
		{Target: "/p", Cache: "", CS: cs("fwd=bypass; detail=key"), Calls: 2},
	}},
	{Name: "ok, a response's Vary keys its variants apart", Config: Config{TTL: minute}, Handler: with("Vary", "Accept-Language"), Steps: []Step{
		{Header: []string{"Accept-Language", "en"}, Cache: "MISS", CS: storedMinute, Body: "page /p #1"},
		{Header: []string{"Accept-Language", "fr"}, Cache: "MISS", CS: cs("fwd=vary-miss; ttl=60; stored"), Body: "page /p #2"},
		{Header: []string{"Accept-Language", "en"}, Cache: "HIT", CS: hitMinute, Body: "page /p #1"},
		{Header: []string{"Accept-Language", "fr"}, Cache: "HIT", CS: hitMinute, Body: "page /p #2"},
		{Cache: "MISS", CS: cs("fwd=vary-miss; ttl=60; stored"), Body: "page /p #3"},
	}},
	{Name: "ok, configured VaryHeaders are part of the key", Config: Config{TTL: minute, VaryHeaders: []string{"x-tenant"}}, Handler: page, Steps: []Step{
		{Header: []string{"X-Tenant", "a"}, Cache: "MISS", CS: storedMinute},
		{Header: []string{"X-Tenant", "b"}, Cache: "MISS", CS: cs("fwd=vary-miss; ttl=60; stored"), Calls: 2},
		{Header: []string{"X-Tenant", "a"}, Cache: "HIT", CS: hitMinute, Body: "page /p #1"},
	}},
	{Name: "nok, Vary: * is never stored", Config: Config{TTL: minute}, Handler: with("Vary", "*"), Steps: []Step{
		{Cache: "MISS", CS: notStored(echocache.BypassVary)}, {Cache: "MISS", CS: notStored(echocache.BypassVary), Calls: 2},
	}},
	{Name: "nok, a request with Authorization neither hits nor fills the cache", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Header: []string{"Authorization", "Bearer a"}, Cache: "", CS: cs("fwd=bypass; detail=authorization"), Body: "page /p #1"},
		{Cache: "MISS", CS: storedMinute, Body: "page /p #2"},
		{Header: []string{"Authorization", "Bearer a"}, Cache: "", CS: cs("fwd=bypass; detail=authorization"), Body: "page /p #3"},
	}},
	{Name: "ok, AllowAuthorization shares pages with credentials", Config: Config{TTL: minute, AllowAuthorization: true}, Handler: page, Steps: []Step{
		{Header: []string{"Authorization", "Bearer a"}, Cache: "MISS", CS: storedMinute},
		{Header: []string{"Authorization", "Bearer b"}, Cache: "HIT", CS: hitMinute, Calls: 1},
	}},
	{Name: "nok, a response that sets a cookie is not stored", Config: Config{TTL: minute}, Handler: with("Set-Cookie", "session=1"), Steps: []Step{
		{Cache: "MISS", CS: notStored(echocache.BypassSetCookie), Want: map[string]string{"Set-Cookie": "session=1"}},
		{Cache: "MISS", CS: notStored(echocache.BypassSetCookie), Calls: 2},
	}},
	{Name: "nok, a cookie set under a lower-case name is heard", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.Response().Header()["set-cookie"] = []string{"session=1"}
		return page(calls, c)
	}, Steps: []Step{{Cache: "MISS", CS: notStored(echocache.BypassSetCookie)}, {Cache: "MISS", CS: notStored(echocache.BypassSetCookie), Calls: 2}}},
	{Name: "nok, Cache-Control private, no-store or no-cache is not stored", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.Response().Header().Set("Cache-Control", []string{"private", "no-store", "no-cache, max-age=5"}[calls%3])
		return page(calls, c)
	}, Steps: []Step{
		{Cache: "MISS", CS: notStored(echocache.BypassCacheControl)}, {Cache: "MISS", CS: notStored(echocache.BypassCacheControl)},
		{Cache: "MISS", CS: notStored(echocache.BypassCacheControl)}, {Cache: "MISS", CS: notStored(echocache.BypassCacheControl), Calls: 4},
	}},
	{Name: "nok, a 404 is not stored by default", Config: Config{TTL: minute}, Handler: status(http.StatusNotFound), Steps: []Step{
		{Status: 404, Cache: "MISS", CS: notStored(echocache.BypassStatus)}, {Status: 404, Cache: "MISS", CS: notStored(echocache.BypassStatus), Calls: 2},
	}},
	{Name: "ok, AllowedStatuses stores a 404", Config: Config{TTL: minute, AllowedStatuses: []int{200, 404}}, Handler: status(http.StatusNotFound), Steps: []Step{
		{Status: 404, Cache: "MISS", CS: storedMinute}, {Status: 404, Cache: "HIT", CS: hitMinute, Calls: 1, Body: "page /p #1"},
	}},
	{Name: "nok, a 500 is not stored", Config: Config{TTL: minute}, Handler: status(http.StatusInternalServerError), Steps: []Step{
		{Status: 500, Cache: "MISS", CS: notStored(echocache.BypassStatus)}, {Status: 500, Cache: "MISS", CS: notStored(echocache.BypassStatus), Calls: 2},
	}},
	{Name: "nok, a handler error is not stored", Config: Config{TTL: minute}, Handler: func(int64, Ctx) error { return errors.New("boom") }, Steps: []Step{
		{Status: 500, Cache: "MISS", CS: handlerError}, {Status: 500, Cache: "MISS", CS: handlerError, Calls: 2},
	}},
	{Name: "nok, a 404 error is an answer, not stored", Config: Config{TTL: minute}, Handler: func(int64, Ctx) error { return StatusError(http.StatusNotFound) }, Steps: []Step{
		{Status: 404, Cache: "MISS", CS: handlerError}, {Status: 404, Cache: "MISS", CS: handlerError, Calls: 2},
	}},
	{Name: "ok, If-None-Match with the ETag gets a 304 from the cache", Config: Config{TTL: minute}, Handler: with("ETag", `"v1"`), Steps: []Step{
		{Cache: "MISS", CS: storedMinute},
		{Header: []string{"If-None-Match", `W/"v1"`}, Status: 304, Cache: "HIT", CS: hitMinute, NoBody: true, Calls: 1, Want: map[string]string{"Etag": `"v1"`, "Content-Type": ""}},
		{Header: []string{"If-None-Match", `"v0"`}, Cache: "HIT", CS: hitMinute, Body: "page /p #1", Calls: 1},
	}},
	{Name: "nok, a conditional miss is passed through and not stored", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Header: []string{"If-None-Match", `"x"`}, Cache: "MISS", CS: notStored(echocache.BypassConditional)},
		{Header: []string{"Range", "bytes=0-1"}, Cache: "MISS", CS: notStored(echocache.BypassConditional), Calls: 2},
		{Cache: "MISS", CS: storedMinute, Calls: 3},
		{Header: []string{"Range", "bytes=0-1"}, Cache: "HIT", CS: hitMinute, Body: "page /p #3", Calls: 3},
	}},
	{Name: "ok, HEAD is answered from the GET's page, without a body", Config: Config{TTL: minute}, Handler: page, Steps: []Step{
		{Method: http.MethodHead, Cache: "MISS", CS: notStored(echocache.BypassHead), Calls: 1},
		{Cache: "MISS", CS: storedMinute, Body: "page /p #2"},
		{Method: http.MethodHead, Cache: "HIT", CS: hitMinute, NoBody: true, Calls: 2, Want: map[string]string{"Content-Length": "10"}},
	}},
	// What the header cannot know: the body is judged after the header
	// went out, with "stored" in it.
	{Name: "nok, a body shorter than its Content-Length is not stored", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.Response().Header().Set("Content-Length", "100")
		return page(calls, c)
	}, Steps: []Step{{Cache: "MISS", CS: storedMinute}, {Cache: "MISS", CS: storedMinute, Calls: 2}}},
	{Name: "nok, a handler that writes nothing leaves nothing", Config: Config{TTL: minute}, Handler: func(int64, Ctx) error { return nil }, Steps: []Step{
		{Cache: "MISS", CS: notStored(echocache.BypassNoResponse), NoBody: true}, {Cache: "MISS", CS: notStored(echocache.BypassNoResponse), NoBody: true, Calls: 2},
	}},
	{Name: "nok, a body over MaxBodySize reaches the client whole but is not stored", Config: Config{TTL: minute, MaxBodySize: 4}, Handler: page, Steps: []Step{
		{Cache: "MISS", CS: storedMinute, Body: "page /p #1"}, {Cache: "MISS", CS: storedMinute, Body: "page /p #2"},
	}},
	{Name: "nok, a body over MaxBodySize that its Content-Length declares says so", Config: Config{TTL: minute, MaxBodySize: 4}, Handler: with("Content-Length", "10"), Steps: []Step{
		{Cache: "MISS", CS: notStored(echocache.BypassTooLarge), Body: "page /p #1"}, {Cache: "MISS", CS: notStored(echocache.BypassTooLarge), Body: "page /p #2"},
	}},
	{Name: "nok, SetTTL(0) keeps the response out", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.SetTTL(0)
		return page(calls, c)
	}, Steps: []Step{{Cache: "MISS", CS: notStored(echocache.BypassTTL)}, {Cache: "MISS", CS: notStored(echocache.BypassTTL), Calls: 2}}},
	{Name: "ok, SetTTL sets the page's lifetime", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.SetTTL(time.Hour)
		return page(calls, c)
	}, Steps: []Step{
		{Cache: "MISS", CS: cs("fwd=uri-miss; ttl=3600; stored")},
		{Advance: 30 * minute, Cache: "HIT", CS: cs("hit; ttl=1800"), Calls: 1},
		{Advance: 31 * minute, Cache: "MISS", CS: cs("fwd=stale; ttl=3600; stored")},
	}},
	{Name: "ok, SetTTL with stores.NoExpiry has no ttl to tell", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.SetTTL(stores.NoExpiry)
		return page(calls, c)
	}, Steps: []Step{
		{Cache: "MISS", CS: cs("fwd=uri-miss; stored")},
		{Advance: 1000 * time.Hour, Cache: "HIT", CS: cs("hit"), Calls: 1},
	}},
	{Name: "ok, TTLFromCacheControl reads s-maxage", Config: Config{TTL: minute, TTLFromCacheControl: true}, Handler: with("Cache-Control", "public, max-age=5, s-maxage=600"), Steps: []Step{
		{Cache: "MISS", CS: cs("fwd=uri-miss; ttl=600; stored")},
		{Advance: 5 * minute, Cache: "HIT", CS: cs("hit; ttl=300")},
		{Advance: 6 * minute, Cache: "MISS", CS: cs("fwd=stale; ttl=600; stored")},
	}},
	// The ResponseFilter decides after the response was written.
	{Name: "nok, ResponseFilter can refuse a response", Config: Config{TTL: minute, ResponseFilter: func(r *http.Request, status int, h http.Header) bool {
		return h.Get("X-Keep") == "yes"
	}}, Handler: with("X-Keep", "no"), Steps: []Step{{Cache: "MISS", CS: storedMinute}, {Cache: "MISS", CS: storedMinute, Calls: 2}}},
	{Name: "ok, StatusHeader names the header; - sets none", Config: Config{TTL: minute, StatusHeader: "-"}, Handler: page, Steps: []Step{
		{Cache: "", CS: storedMinute}, {Cache: "", CS: hitMinute, Calls: 1},
	}},
	{Name: "ok, CacheStatusName names the cache, quoted when it is not a token", Config: Config{TTL: minute, CacheStatusName: "app cache"}, Handler: page, Steps: []Step{
		{Cache: "MISS", CS: `"app cache"; fwd=uri-miss; ttl=60; stored`}, {Cache: "HIT", CS: `"app cache"; hit; ttl=60`, Calls: 1},
		{Method: http.MethodPost, Cache: "", CS: `"app cache"; fwd=method; detail=method`, Calls: 2},
	}},
	{Name: "ok, CacheStatusName - sends no Cache-Status", Config: Config{TTL: minute, CacheStatusName: "-"}, Handler: page, Steps: []Step{
		{Cache: "MISS", CS: ""}, {Cache: "HIT", CS: "", Calls: 1}, {Method: http.MethodPost, Cache: "", CS: "", Calls: 2},
	}},
	{Name: "ok, the member follows those of the caches behind the route, and is not stored", Config: Config{TTL: minute}, Handler: func(calls int64, c Ctx) error {
		c.Response().Header().Add("Cache-Status", "Upstream; fwd=uri-miss")
		c.Response().Header().Add("Cache-Status", `"Origin cache"; hit`)
		return page(calls, c)
	}, Steps: []Step{
		{Cache: "MISS", CS: `Upstream; fwd=uri-miss, "Origin cache"; hit, ` + storedMinute},
		{Advance: time.Second, Cache: "HIT", CS: `Upstream; fwd=uri-miss, "Origin cache"; hit, ` + cs("hit; ttl=59"), Calls: 1},
		{Method: http.MethodPost, Cache: "", CS: `Upstream; fwd=uri-miss, "Origin cache"; hit, ` + cs("fwd=method; detail=method"), Calls: 2},
		{Header: []string{"Authorization", "Bearer a"}, CS: `Upstream; fwd=uri-miss, "Origin cache"; hit, ` + cs("fwd=bypass; detail=authorization"), Calls: 3},
	}},
	{Name: "nok, a bypass: a GET with a body, a Skipper", Config: Config{TTL: minute, Skipper: func(r *http.Request) bool { return r.URL.Query().Has("skip") }}, Handler: page, Steps: []Step{
		{Header: []string{"Content-Length", "3"}, Cache: "", CS: cs("fwd=bypass; detail=body"), Calls: 1},
		{Target: "/p?skip", Cache: "", CS: cs("fwd=bypass; detail=skipper"), Calls: 2},
		{Method: http.MethodDelete, Cache: "", CS: cs("fwd=method; detail=method"), Calls: 3},
	}},
	{Name: "ok, stale-if-error serves the stale page in place of a failure", Config: Config{TTL: minute, StaleIfError: time.Hour}, Handler: func(calls int64, c Ctx) error {
		if calls > 1 {
			if calls%2 == 0 {
				return errors.New("backend down")
			}
			return status(http.StatusServiceUnavailable)(calls, c)
		}
		return page(calls, c)
	}, Steps: []Step{
		{Cache: "MISS", CS: storedMinute, Body: "page /p #1"},
		{Advance: 2 * minute, Cache: "STALE", Body: "page /p #1", Calls: 2,
			CS: cs("fwd=stale; ttl=-60; detail=error") + " | " + cs("fwd=stale; fwd-status=500; ttl=-60; detail=status")},
		{Cache: "STALE", CS: cs("fwd=stale; fwd-status=503; ttl=-60; detail=status"), Body: "page /p #1", Calls: 3},
		{Advance: 2 * time.Hour, Status: 500, Cache: "MISS", Calls: 4,
			CS: cs("fwd=stale; detail=error") + " | " + cs("fwd=stale; detail=status")},
	}},
}

// handlerError is the member of a miss whose handler returned an error:
// Echo's error handler answers it after the middleware, in the header the
// member was put in; a net/http handler answers it itself, with a status
// that is not stored.
var handlerError = notStored(echocache.BypassError) + " | " + notStored(echocache.BypassStatus)

// runTable runs every case on a fresh app of fe.
func runTable(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tc := range slices.Concat(Cases, asMissCases()) {
		t.Run(tc.Name, func(t *testing.T) {
			c := open(t)
			k := newClock(c)
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			app.Route("/p", tc.Config, func(ctx Ctx) error { return tc.Handler(calls.Add(1), ctx) })
			for i, s := range tc.Steps {
				k.Advance(s.Advance)
				rec := Do(app, s.Method, s.Target, s.Header...)
				if s.Settle {
					settle(t, c)
				}
				method, target := or(s.Method, http.MethodGet), or(s.Target, "/p")
				what := fmt.Sprintf("step %d, %s %s %v", i+1, method, target, s.Header)
				if got, want := rec.Code, or(s.Status, http.StatusOK); got != want {
					t.Errorf("%s: status %d; want %d", what, got, want)
				}
				if got := rec.Header().Get("X-Cache"); got != s.Cache {
					t.Errorf("%s: X-Cache %q; want %q", what, got, s.Cache)
				}
				if got := cacheStatus(rec.Header()); !slices.Contains(strings.Split(s.CS, " | "), got) {
					t.Errorf("%s: Cache-Status %q; want %q", what, got, s.CS)
				}
				if s.Body != "" && rec.Body.String() != s.Body || s.NoBody && rec.Body.Len() > 0 {
					t.Errorf("%s: body %q; want %q", what, rec.Body.String(), s.Body)
				}
				for name, want := range s.Want {
					if got := rec.Header().Get(name); got != want {
						t.Errorf("%s: %s %q; want %q", what, name, got, want)
					}
				}
				if s.Calls != 0 && calls.Load() != s.Calls {
					t.Errorf("%s: the handler ran %d times; want %d", what, calls.Load(), s.Calls)
				}
				if s.Cache == "HIT" && s.Status != http.StatusNotModified && !strings.HasPrefix(rec.Header().Get("Etag"), `"`) {
					t.Errorf("%s: a hit without a strong ETag: %q", what, rec.Header().Get("Etag"))
				}
			}
		})
	}
}

// cacheStatus returns the Cache-Status field lines of h joined as one
// list (RFC 9110, 5.3).
func cacheStatus(h http.Header) string {
	return strings.Join(h.Values("Cache-Status"), ", ")
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Do serves one request on h; hdr holds header name/value pairs ("Host"
// sets the request's host, "Content-Length" gives it a body of that
// length).
func Do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(or(method, http.MethodGet), or(target, "/p"), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		switch hdr[i] {
		case "Host":
			req.Host = hdr[i+1]
			continue
		case "Content-Length":
			n, _ := strconv.Atoi(hdr[i+1])
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(strings.Repeat("x", n))), int64(n)
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// staleWhileRevalidate: a page past its TTL is served STALE while one
// background request refreshes it, on a copy of the request without the
// client's conditional headers.
func staleWhileRevalidate(t *testing.T, fe Frontend, c *echocache.Cache) {
	k := newClock(c)
	refreshed := make(chan struct{}, 4)
	pagecache.HooksOf((*core.Cache)(c)).RefreshDone = func() { refreshed <- struct{}{} }
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	app.Route("/p", Config{TTL: minute, StaleWhileRevalidate: time.Hour}, func(ctx Ctx) error {
		n := calls.Add(1)
		if ctx.Request().Header.Get("If-None-Match") != "" {
			return errors.New("the refresh carried the client's If-None-Match")
		}
		return page(n, ctx)
	})
	Do(app, "", "")
	k.Advance(2 * minute)
	rec := Do(app, "", "")
	if rec.Header().Get("X-Cache") != "STALE" || rec.Body.String() != "page /p #1" {
		t.Fatalf("after the TTL: X-Cache %q, body %q; want STALE and the first page", rec.Header().Get("X-Cache"), rec.Body.String())
	}
	if got, want := cacheStatus(rec.Header()), cs("hit; ttl=-60"); got != want {
		t.Errorf("a stale page while it is refreshed: Cache-Status %q; want %q", got, want)
	}
	<-refreshed
	rec = Do(app, "", "")
	if rec.Header().Get("X-Cache") != "HIT" || rec.Body.String() != "page /p #2" {
		t.Errorf("after the refresh: X-Cache %q, body %q; want HIT and the refreshed page", rec.Header().Get("X-Cache"), rec.Body.String())
	}
	if got := cacheStatus(rec.Header()); got != hitMinute {
		t.Errorf("after the refresh: Cache-Status %q; want %q", got, hitMinute)
	}
	k.Advance(2 * minute)
	rec = Do(app, "", "", "If-None-Match", `"old"`)
	if rec.Header().Get("X-Cache") != "STALE" {
		t.Errorf("X-Cache %q; want STALE", rec.Header().Get("X-Cache"))
	}
	<-refreshed
	if rec := Do(app, "", ""); rec.Body.String() != "page /p #3" {
		t.Errorf("after a refresh for a conditional request: body %q; want the refreshed page", rec.Body.String())
	}
}

// invalidation: DeletePage and InvalidateTag drop pages of this front
// end, from the shared Cache.
func invalidation(t *testing.T, fe Frontend, c *echocache.Cache) {
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	h := func(ctx Ctx) error {
		ctx.Tag("news")
		return page(calls.Add(1), ctx)
	}
	app.Route("/p", Config{TTL: minute}, h)
	app.Route("/q", Config{TTL: minute, KeyPrefix: "view/%s", IgnoreQueryParams: []string{"ref"}}, h)
	ctx := context.Background()
	check := func(target, want string, wantCS ...string) {
		t.Helper()
		rec := Do(app, "", target)
		if got := rec.Header().Get("X-Cache"); got != want {
			t.Errorf("GET %s: X-Cache %q; want %q", target, got, want)
		}
		if got := cacheStatus(rec.Header()); len(wantCS) > 0 && got != wantCS[0] {
			t.Errorf("GET %s: Cache-Status %q; want %q", target, got, wantCS[0])
		}
	}
	check("/p?a=1", "MISS", storedMinute)
	check("/q?ref=x", "MISS")
	check("/p?a=1", "HIT")
	if err := c.DeletePage(ctx, "/p?a=1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePage(ctx, "https://other.example/q?ref=y"); err != nil {
		t.Fatal(err)
	}
	check("/p?a=1", "MISS", storedMinute) // the page is gone
	check("/q", "MISS")
	check("/p?a=1", "HIT")
	if err := c.InvalidateTag(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	check("/p?a=1", "MISS", cs("fwd=stale; ttl=60; stored")) // found, but its tag moved on
	check("/q", "MISS")
}

// stampede: concurrent misses of one page run the handler once, and every
// request gets its page.
func stampede(t *testing.T, fe Frontend, c *echocache.Cache) {
	const n = 8
	waiting := make(chan struct{}, n)
	pagecache.HooksOf((*core.Cache)(c)).OnWait = func() { waiting <- struct{}{} }
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	release := make(chan struct{})
	app.Route("/p", Config{TTL: minute}, func(ctx Ctx) error {
		<-release
		return page(calls.Add(1), ctx)
	})
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() { recs[i] = Do(app, "", "") })
	}
	for range n - 1 {
		<-waiting // every request but the runner waits for its page
	}
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("the handler ran %d times for %d concurrent misses; want 1", got, n)
	}
	statuses := map[string]int{}
	for i, rec := range recs {
		if rec.Code != http.StatusOK || rec.Body.String() != "page /p #1" {
			t.Errorf("request %d: status %d, body %q; want the one page", i, rec.Code, rec.Body.String())
		}
		statuses[cacheStatus(rec.Header())]++
	}
	if want := map[string]int{storedMinute: 1, cs("fwd=uri-miss; collapsed"): n - 1}; !maps.Equal(statuses, want) {
		t.Errorf("Cache-Status of the %d requests: %v; want %v", n, statuses, want)
	}
}

// storeFailures: a request the store cannot answer is served by the
// handler and says why in Cache-Status: no store yet (before Init), a
// store error, the breaker open.
func storeFailures(t *testing.T, fe Frontend) {
	route := func(app App) {
		app.Route("/p", Config{TTL: minute}, func(x Ctx) error { return page(1, x) })
	}
	check := func(t *testing.T, app App, wantCache, wantCS string) {
		t.Helper()
		rec := Do(app, "", "")
		if rec.Code != http.StatusOK || rec.Body.String() != "page /p #1" {
			t.Errorf("status %d, body %q; want the handler's page", rec.Code, rec.Body.String())
		}
		if got := rec.Header().Get("X-Cache"); got != wantCache {
			t.Errorf("X-Cache %q; want %q", got, wantCache)
		}
		if got := cacheStatus(rec.Header()); got != wantCS {
			t.Errorf("Cache-Status %q; want %q", got, wantCS)
		}
	}
	t.Run("nok, no store before Init", func(t *testing.T) {
		app := fe.NewApp(t, echocache.New(nil))
		route(app)
		check(t, app, "", cs("fwd=bypass; detail=uninitialized"))
	})
	t.Run("nok, the store is down, then the breaker open", func(t *testing.T) {
		u, err := url.Parse(servertest.Redis(t))
		if err != nil {
			t.Fatal(err)
		}
		proxy := faultproxy.Start(t, u.Host)
		u.Host = proxy.Addr()
		q := u.Query()
		q.Set("prefix", "routetest-failures:")
		u.RawQuery = q.Encode()
		s, err := stores.Open(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		c, err := echocache.NewWithConfig(s, echocache.Config{
			BreakerThreshold: 1,
			Slog:             slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		(*core.Cache)(c).SetProbeInterval(time.Hour) // the breaker stays open
		app := fe.NewApp(t, c)
		route(app)
		proxy.Drop()
		check(t, app, "MISS", cs("fwd=miss; detail=store-error"))
		check(t, app, "MISS", cs("fwd=miss; detail=store-unavailable"))
	})
}

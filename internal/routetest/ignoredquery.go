package routetest

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// QueryReader is implemented by a Ctx whose framework reads the query
// itself (Echo's QueryParam, QueryParams and QueryString, which keep the
// parsed query for the request); for another, the suite reads
// Request().URL.
type QueryReader interface {
	QueryParam(name string) string
	QueryParams() url.Values
	QueryString() string
}

// reflectQuery writes every way a handler reads its query, as a handler
// that reflects its query into the page would.
func reflectQuery(c Ctx) error {
	r := c.Request()
	var q QueryReader = urlQuery{r}
	if qr, ok := c.(QueryReader); ok {
		q = qr
	}
	var b strings.Builder
	b.WriteString("raw=" + r.URL.RawQuery)
	b.WriteString(" uri=" + r.RequestURI)
	b.WriteString(" string=" + q.QueryString())
	b.WriteString(" param=" + q.QueryParam("utm_source") + "," + q.QueryParam("a"))
	b.WriteString(" params=" + q.QueryParams().Encode())
	b.WriteString(" form=" + r.FormValue("utm_source") + "," + r.FormValue("a"))
	_, err := c.Response().Write([]byte(b.String()))
	return err
}

type urlQuery struct{ r *http.Request }

func (u urlQuery) QueryParam(name string) string { return u.r.URL.Query().Get(name) }
func (u urlQuery) QueryParams() url.Values       { return u.r.URL.Query() }
func (u urlQuery) QueryString() string           { return u.r.URL.RawQuery }

// ignoredQuery: the handler of a page to be stored sees the request
// without the query parameters its key ignores (IgnoreQueryParams), by
// every way it reads the query, so that a page stored for a campaign link
// is byte for byte the page of the plain URL, and a handler that reflects
// its query cannot put a parameter the key ignores into the shared page.
// Outer middleware has parsed the query before (Echo keeps it).
func ignoredQuery(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	plain := func(t *testing.T, target string) string {
		t.Helper()
		app := fe.NewApp(t, open(t))
		app.Route("/*", Config{TTL: time.Minute, IgnoreQueryParams: []string{}}, reflectQuery)
		return Do(app, "", target).Body.String()
	}
	for _, tc := range []struct{ name, poisoned, clean string }{
		{"ignored parameter after", "/p/s?a=1&utm_source=evil", "/p/s?a=1"},
		{"ignored parameters first and between", "/p/s?utm_source=evil&a=1&fbclid=x&utm_medium=m", "/p/s?a=1"},
		{"only ignored parameters", "/p/s?utm_source=evil&gclid=g", "/p/s"},
		{"escaped name", "/p/s?a=1&utm%5Fsource=evil", "/p/s?a=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := plain(t, tc.clean)
			app := fe.NewApp(t, open(t))
			outer := func(w http.ResponseWriter, r *http.Request) { _ = r.ParseForm() }
			app.Route("/*", Config{TTL: time.Minute, Outer: outer}, reflectQuery)
			first := Do(app, "", tc.poisoned)
			if first.Header().Get("X-Cache") != "MISS" || first.Body.String() != want {
				t.Fatalf("GET %s: X-Cache %q, body %q; want MISS, %q (the plain request's)", tc.poisoned, first.Header().Get("X-Cache"), first.Body.String(), want)
			}
			hit := Do(app, "", tc.clean)
			if hit.Header().Get("X-Cache") != "HIT" || hit.Body.String() != want {
				t.Errorf("GET %s after %s: X-Cache %q, body %q; want HIT, %q", tc.clean, tc.poisoned, hit.Header().Get("X-Cache"), hit.Body.String(), want)
			}
			if strings.Contains(hit.Body.String(), "evil") {
				t.Errorf("the shared page holds an ignored parameter: %q", hit.Body.String())
			}
		})
	}
}

// ignoredQueryRefresh: the background refresh of a stale page, started by
// a request with an ignored parameter, runs the handler without it too.
func ignoredQueryRefresh(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	c := open(t)
	k := newClock(c)
	refreshed := make(chan struct{}, 1)
	pagecache.HooksOf((*core.Cache)(c)).RefreshDone = func() { refreshed <- struct{}{} }
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	app.Route("/p", Config{TTL: minute, StaleWhileRevalidate: time.Hour}, func(x Ctx) error {
		calls.Add(1)
		return reflectQuery(x)
	})
	want := Do(app, "", "/p?a=1").Body.String()
	k.Advance(2 * minute)
	if rec := Do(app, "", "/p?a=1&utm_source=evil"); rec.Header().Get("X-Cache") != "STALE" {
		t.Fatalf("after the TTL: X-Cache %q; want STALE", rec.Header().Get("X-Cache"))
	}
	<-refreshed
	rec := Do(app, "", "/p?a=1")
	if rec.Header().Get("X-Cache") != "HIT" || calls.Load() != 2 || rec.Body.String() != want {
		t.Errorf("after a refresh started by a campaign link: X-Cache %q, %d runs, body %q; want HIT, 2, %q", rec.Header().Get("X-Cache"), calls.Load(), rec.Body.String(), want)
	}
}

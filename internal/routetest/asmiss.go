package routetest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/echocache/echocache/echocache"
)

// The cases of asMissCases: a background refresh and a hit follow the
// miss's rules. A refresh stores only what a miss of the same request,
// under the same outer middleware, would store; a hit reads every request
// header it looks at in any spelling; a response that an error handler or
// a recovering middleware inside the route cut short is not stored.

// lowerHeaders is outer middleware that moves each request header
// "X-Lower-<Name>: v" to the lower-case name, as code that assigns the
// header map directly does (net/http itself canonicalises what it parses).
func lowerHeaders(_ http.ResponseWriter, r *http.Request) {
	for k, vs := range r.Header {
		if name, ok := strings.CutPrefix(k, "X-Lower-"); ok {
			delete(r.Header, k)
			r.Header[strings.ToLower(name)] = vs
		}
	}
}

// anySpelling returns the first value of a request header in any
// spelling, as a handler or library that ranges over the map reads it.
func anySpelling(r *http.Request, name string) string {
	for k, vs := range r.Header {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// shapers are request headers that change what a handler answers and that
// keep a response out of the store.
var shapers = []string{"Authorization", "Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Range", "If-Unmodified-Since"}

// shaped answers "shaped by <name>" when the request carries one of the
// shapers in any spelling, else page.
func shaped(calls int64, c Ctx) error {
	for _, n := range shapers {
		if v := anySpelling(c.Request(), n); v != "" {
			c.Response().WriteHeader(http.StatusOK)
			_, err := fmt.Fprintf(c.Response(), "shaped by %s=%s", n, v)
			return err
		}
	}
	return page(calls, c)
}

// session answers "hello <sid>" for a request with a sid cookie.
func session(_ int64, c Ctx) error {
	who := "anon"
	if ck, err := c.Request().Cookie("sid"); err == nil {
		who = ck.Value
	}
	c.Response().WriteHeader(http.StatusOK)
	_, err := fmt.Fprintf(c.Response(), "hello %s", who)
	return err
}

// forSession is outer middleware that sets a response header for requests
// with a sid cookie.
func forSession(name, value string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("sid"); err == nil {
			w.Header().Set(name, value)
		}
	}
}

// partial writes "part 1;", then panics on the run numbered panicAt,
// else finishes with "part 2".
func partial(panicAt int64) func(int64, Ctx) error {
	return func(calls int64, c Ctx) error {
		c.Response().WriteHeader(http.StatusOK)
		_, _ = fmt.Fprint(c.Response(), "part 1;")
		if calls == panicAt {
			panic("the handler failed half-way")
		}
		_, err := fmt.Fprint(c.Response(), "part 2")
		return err
	}
}

const hour = time.Hour

// staleHour is the member of a page served stale a minute past its TTL.
var staleHour = cs("hit; ttl=-60")

// asMissCases are run with Cases by the table.
func asMissCases() []Case {
	swr := Config{TTL: minute, StaleWhileRevalidate: hour, Outer: lowerHeaders}
	cases := []Case{
		{Name: "nok, a refresh sees the Cache-Control: private outer middleware set for a session", Config: Config{TTL: minute, StaleWhileRevalidate: hour, Outer: forSession("Cache-Control", "private")}, Handler: session, Steps: []Step{
			{Header: []string{"Cookie", "sid=alice"}, Cache: "MISS", CS: notStored(echocache.BypassCacheControl), Body: "hello alice"},
			{Cache: "MISS", CS: storedMinute, Body: "hello anon"},
			{Advance: 2 * minute, Header: []string{"Cookie", "sid=alice"}, Cache: "STALE", CS: cs("hit; ttl=-60"), Body: "hello anon", Settle: true},
			{Cache: "STALE", CS: cs("hit; ttl=-60"), Body: "hello anon", Settle: true},
			{Cache: "HIT", CS: hitMinute, Body: "hello anon"},
		}},
		{Name: "nok, a refresh sees the Set-Cookie outer middleware set", Config: Config{TTL: minute, StaleWhileRevalidate: hour, Outer: forSession("Set-Cookie", "seen=1")}, Handler: session, Steps: []Step{
			{Header: []string{"Cookie", "sid=alice"}, Cache: "MISS", CS: notStored(echocache.BypassSetCookie), Body: "hello alice"},
			{Cache: "MISS", CS: storedMinute, Body: "hello anon"},
			{Advance: 2 * minute, Header: []string{"Cookie", "sid=alice"}, Cache: "STALE", CS: staleHour, Body: "hello anon", Settle: true},
			{Cache: "STALE", CS: staleHour, Body: "hello anon"},
		}},
		{Name: "nok, a refresh sees a private Cache-Control outer middleware set in lower case", Config: Config{TTL: minute, StaleWhileRevalidate: hour, Outer: func(w http.ResponseWriter, r *http.Request) {
			if _, err := r.Cookie("sid"); err == nil {
				w.Header()["cache-control"] = []string{"no-store"}
			}
		}}, Handler: session, Steps: []Step{
			{Cache: "MISS", CS: storedMinute, Body: "hello anon"},
			{Advance: 2 * minute, Header: []string{"Cookie", "sid=alice"}, Cache: "STALE", CS: staleHour, Body: "hello anon", Settle: true},
			{Cache: "STALE", CS: staleHour, Body: "hello anon"},
		}},
		{Name: "ok, a hit reads Authorization, If-None-Match and the vary headers in any spelling", Config: Config{TTL: minute, Outer: lowerHeaders}, Handler: func(calls int64, c Ctx) error {
			c.Response().Header().Set("ETag", `"v1"`)
			c.Response().Header().Set("Vary", "Accept-Language")
			if v := anySpelling(c.Request(), "Authorization"); v != "" {
				return shaped(calls, c)
			}
			c.Response().WriteHeader(http.StatusOK)
			_, err := fmt.Fprintf(c.Response(), "page #%d lang=%s", calls, anySpelling(c.Request(), "Accept-Language"))
			return err
		}, Steps: []Step{
			{Header: []string{"Accept-Language", "fr"}, Cache: "MISS", CS: storedMinute, Body: "page #1 lang=fr"},
			{Header: []string{"X-Lower-Accept-Language", "fr"}, Cache: "HIT", CS: hitMinute, Body: "page #1 lang=fr", Calls: 1},
			{Header: []string{"X-Lower-Accept-Language", "fr", "X-Lower-If-None-Match", `"v1"`}, Status: http.StatusNotModified, Cache: "HIT", CS: hitMinute, NoBody: true, Calls: 1},
			{Header: []string{"Accept-Language", "fr", "X-Lower-Authorization", "Bearer a"}, Cache: "", CS: cs("fwd=bypass; detail=authorization"), Body: "shaped by Authorization=Bearer a", Calls: 2},
		}},
		{Name: "nok, a panic a recovering middleware inside the route caught after the handler wrote is not stored", Config: Config{TTL: minute, RecoverInside: true}, Handler: partial(1), Steps: []Step{
			{Cache: "MISS", CS: storedMinute, Body: "part 1;"},
			{Cache: "MISS", CS: storedMinute, Body: "part 1;part 2", Calls: 2},
			{Cache: "HIT", CS: hitMinute, Body: "part 1;part 2", Calls: 2},
		}},
		{Name: "nok, a refresh whose panic a recovering middleware inside the route caught is not stored", Config: Config{TTL: minute, StaleWhileRevalidate: hour, RecoverInside: true}, Handler: partial(2), Steps: []Step{
			{Cache: "MISS", CS: storedMinute, Body: "part 1;part 2"},
			{Advance: 2 * minute, Cache: "STALE", CS: staleHour, Body: "part 1;part 2", Settle: true, Calls: 2},
			{Cache: "STALE", CS: staleHour, Body: "part 1;part 2", Settle: true, Calls: 3},
			{Cache: "HIT", CS: hitMinute, Body: "part 1;part 2", Calls: 3},
		}},
		{Name: "nok, a refresh answered with a status the route does not store, or cut short, leaves the stale page", Config: Config{TTL: minute, StaleWhileRevalidate: hour}, Handler: func(calls int64, c Ctx) error {
			switch calls {
			case 2:
				return status(http.StatusInternalServerError)(calls, c)
			case 3:
				c.Response().Header().Set("Content-Length", "100")
			}
			return page(calls, c)
		}, Steps: []Step{
			{Cache: "MISS", CS: storedMinute, Body: "page /p #1"},
			{Advance: 2 * minute, Cache: "STALE", CS: staleHour, Body: "page /p #1", Settle: true, Calls: 2},
			{Cache: "STALE", CS: staleHour, Body: "page /p #1", Settle: true, Calls: 3},
			{Cache: "STALE", CS: staleHour, Body: "page /p #1", Settle: true, Calls: 4},
			{Cache: "HIT", CS: hitMinute, Body: "page /p #4", Calls: 4},
		}},
	}
	for _, name := range shapers {
		// Authorization bypasses the cache, in any spelling: no stale page,
		// no refresh. The others are served the stale page, and the
		// refresh runs without them.
		stale := []Step{
			{Advance: 2 * minute, Header: []string{"X-Lower-" + name, "v"}, Cache: "STALE", CS: staleHour, Body: "page /p #1", Settle: true, Calls: 2},
			{Cache: "HIT", CS: hitMinute, Body: "page /p #2", Calls: 2},
		}
		if name == "Authorization" {
			stale = []Step{
				{Advance: 2 * minute, Header: []string{"X-Lower-" + name, "v"}, Cache: "", CS: cs("fwd=bypass; detail=authorization"), Body: "shaped by Authorization=v", Calls: 2},
				{Cache: "STALE", CS: staleHour, Body: "page /p #1", Settle: true, Calls: 3},
				{Cache: "HIT", CS: hitMinute, Body: "page /p #3", Calls: 3},
			}
		}
		cases = append(cases, Case{
			Name:    "nok, a refresh from a request with " + strings.ToLower(name) + " in lower case stores the plain page",
			Config:  swr,
			Handler: shaped,
			Steps:   append([]Step{{Cache: "MISS", CS: storedMinute, Body: "page /p #1"}}, stale...),
		})
	}
	return cases
}

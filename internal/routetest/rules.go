package routetest

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
)

// RuleCase: the same request twice; the response is stored (the second is
// a hit) or not, and then Reason is the bypass counted each time ("": not
// checked, for a reason that differs between front ends). CS is the
// Cache-Status of the first response (as in Step.CS); a response not
// stored has it each time, a stored one is then a hit.
type RuleCase struct {
	Name     string
	Config   Config
	Method   string
	Header   []string
	Handler  Handler
	Status   int    // default 200
	Body     string // default "body"; "-" skips the check
	Stored   bool
	CS       string
	Reason   echocache.BypassReason
	Anything bool // Reason "" means: any bypass, or none
}

func text(code int, body string) Handler {
	return func(c Ctx) error {
		if c.Response().Header().Get("Content-Type") == "" {
			c.Response().Header().Set("Content-Type", "text/plain; charset=UTF-8")
		}
		c.Response().WriteHeader(code)
		_, err := c.Response().Write([]byte(body))
		return err
	}
}

func withHeader(name, value string) Handler {
	return func(c Ctx) error {
		c.Response().Header().Set(name, value)
		return text(http.StatusOK, "body")(c)
	}
}

var big = strings.Repeat("x", 100)

// bypassMethod is the member of a request the method keeps from the cache.
var bypassMethod = cs("fwd=method; detail=method")

// RuleCases is the table of the rules that decide whether a response is
// stored.
var RuleCases = []RuleCase{
	{Name: "ok, GET 200", CS: storedMinute, Handler: text(200, "body"), Stored: true},
	{Name: "nok, POST", CS: bypassMethod, Method: http.MethodPost, Handler: text(200, "body"), Reason: echocache.BypassMethod},
	{Name: "nok, PUT", CS: bypassMethod, Method: http.MethodPut, Handler: text(200, "body"), Reason: echocache.BypassMethod},
	{Name: "nok, DELETE", CS: bypassMethod, Method: http.MethodDelete, Handler: text(200, "body"), Reason: echocache.BypassMethod},
	{Name: "nok, status 404 by default", CS: notStored(echocache.BypassStatus), Handler: text(404, "gone"), Status: 404, Body: "gone", Reason: echocache.BypassStatus},
	{Name: "nok, status 500", CS: notStored(echocache.BypassStatus), Handler: text(500, "boom"), Status: 500, Body: "boom", Reason: echocache.BypassStatus},
	{Name: "nok, status 201", CS: notStored(echocache.BypassStatus), Handler: text(201, "made"), Status: 201, Body: "made", Reason: echocache.BypassStatus},
	{Name: "ok, status 404 when allowed", CS: storedMinute, Config: Config{AllowedStatuses: []int{200, 404}}, Handler: text(404, "gone"), Status: 404, Body: "gone", Stored: true},
	{Name: "nok, Set-Cookie", CS: notStored(echocache.BypassSetCookie), Handler: withHeader("Set-Cookie", "session=secret"), Reason: echocache.BypassSetCookie},
	{Name: "nok, Cache-Control no-store", CS: notStored(echocache.BypassCacheControl), Handler: withHeader("Cache-Control", "no-store"), Reason: echocache.BypassCacheControl},
	{Name: "nok, Cache-Control private", CS: notStored(echocache.BypassCacheControl), Handler: withHeader("Cache-Control", "max-age=60, private"), Reason: echocache.BypassCacheControl},
	{Name: "nok, Cache-Control private with fields", CS: notStored(echocache.BypassCacheControl), Handler: withHeader("Cache-Control", `private="X-User"`), Reason: echocache.BypassCacheControl},
	{Name: "nok, Cache-Control No-Cache", CS: notStored(echocache.BypassCacheControl), Handler: withHeader("Cache-Control", "public, No-Cache"), Reason: echocache.BypassCacheControl},
	{Name: "ok, Cache-Control public", CS: storedMinute, Handler: withHeader("Cache-Control", "public, max-age=60"), Stored: true},
	{Name: "nok, Vary: *", CS: notStored(echocache.BypassVary), Handler: withHeader("Vary", "Accept, *"), Reason: echocache.BypassVary},
	{Name: "nok, a header value with a control byte", CS: notStored(echocache.BypassBadHeader), Handler: withHeader("X-Odd", "a\x01b"), Reason: echocache.BypassBadHeader},
	{Name: "nok, a header name that is not a token", CS: notStored(echocache.BypassBadHeader), Handler: func(c Ctx) error {
		c.Response().Header()["Bad Name"] = []string{"v"}
		return text(http.StatusOK, "body")(c)
	}, Reason: echocache.BypassBadHeader},
	{Name: "nok, handler error", CS: handlerError, Handler: func(Ctx) error { return errors.New("boom") }, Status: 500, Body: "-", Anything: true},
	{Name: "nok, handler writes nothing", CS: notStored(echocache.BypassNoResponse), Handler: func(Ctx) error { return nil }, Body: "", Reason: echocache.BypassNoResponse},
	// The body is judged after the header went out, with "stored" in it,
	// unless its Content-Length told.
	{Name: "nok, body over MaxBodySize still reaches the client whole", CS: storedMinute, Config: Config{MaxBodySize: 99}, Handler: text(200, big), Body: big, Reason: echocache.BypassTooLarge},
	{Name: "nok, body over MaxBodySize, as its Content-Length says", CS: notStored(echocache.BypassTooLarge), Config: Config{MaxBodySize: 99}, Handler: func(c Ctx) error {
		c.Response().Header().Set("Content-Length", "100")
		return text(200, big)(c)
	}, Body: big, Reason: echocache.BypassTooLarge},
	{Name: "ok, body of exactly MaxBodySize", CS: storedMinute, Config: Config{MaxBodySize: 100}, Handler: text(200, big), Body: big, Stored: true},
	{Name: "nok, a body shorter than its Content-Length", CS: storedMinute, Handler: withHeader("Content-Length", "100"), Body: "-", Reason: echocache.BypassLength},
	{Name: "nok, trailers", CS: notStored(echocache.BypassTrailer), Handler: withHeader("Trailer", "X-Checksum"), Reason: echocache.BypassTrailer},
	{Name: "nok, an event stream", CS: notStored(echocache.BypassEventStream), Handler: withHeader("Content-Type", "text/event-stream"), Reason: echocache.BypassEventStream},
	{Name: "nok, an event stream in another case, with a parameter", CS: notStored(echocache.BypassEventStream), Handler: withHeader("Content-Type", "Text/Event-Stream; charset=utf-8"), Reason: echocache.BypassEventStream},
	{Name: "nok, Authorization", CS: cs("fwd=bypass; detail=authorization"), Header: []string{"Authorization", "Bearer x"}, Handler: text(200, "body"), Reason: echocache.BypassAuthorization},
	{Name: "ok, Authorization when allowed", CS: storedMinute, Config: Config{AllowAuthorization: true}, Header: []string{"Authorization", "Bearer x"}, Handler: text(200, "body"), Stored: true},
	{Name: "nok, a GET with a body", CS: cs("fwd=bypass; detail=body"), Header: []string{"Content-Length", "3"}, Handler: text(200, "body"), Reason: echocache.BypassBody},
	{Name: "nok, Skipper", CS: cs("fwd=bypass; detail=skipper"), Config: Config{Skipper: func(*http.Request) bool { return true }}, Handler: text(200, "body"), Reason: echocache.BypassSkipper},
	// The ResponseFilter decides after the response was written.
	{Name: "nok, ResponseFilter refuses", CS: storedMinute, Config: Config{ResponseFilter: func(_ *http.Request, _ int, h http.Header) bool { return h.Get("X-Draft") == "" }},
		Handler: withHeader("X-Draft", "1"), Reason: echocache.BypassFilter},
	{Name: "ok, ResponseFilter accepts", CS: storedMinute, Config: Config{ResponseFilter: func(_ *http.Request, status int, _ http.Header) bool { return status == 200 }},
		Handler: text(200, "body"), Stored: true},
	{Name: "nok, SetTTL 0", CS: notStored(echocache.BypassTTL), Handler: func(c Ctx) error {
		c.SetTTL(0)
		return text(http.StatusOK, "body")(c)
	}, Reason: echocache.BypassTTL},
	{Name: "nok, max-age=0 with TTLFromCacheControl", CS: notStored(echocache.BypassTTL), Config: Config{TTLFromCacheControl: true}, Handler: withHeader("Cache-Control", "public, max-age=0"), Reason: echocache.BypassTTL},
	{Name: "nok, invalid max-age with TTLFromCacheControl", CS: notStored(echocache.BypassTTL), Config: Config{TTL: minute, TTLFromCacheControl: true}, Handler: withHeader("Cache-Control", "public, max-age=-5"), Reason: echocache.BypassTTL},
	{Name: "nok, conflicting max-age with TTLFromCacheControl", CS: notStored(echocache.BypassTTL), Config: Config{TTL: minute, TTLFromCacheControl: true}, Handler: withHeader("Cache-Control", "max-age=60, max-age=abc"), Reason: echocache.BypassTTL},
	{Name: "nok, KeyFunc gives no key", CS: cs("fwd=bypass; detail=key"), Config: Config{KeyFunc: func(*http.Request) string { return "" }}, Handler: text(200, "body"), Reason: echocache.BypassKey},
}

func runRules(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tc := range RuleCases {
		t.Run(tc.Name, func(t *testing.T) {
			c := open(t)
			newClock(c) // ttl in Cache-Status is 60, whatever the time the test takes
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			cfg := tc.Config
			cfg.TTL = time.Minute
			app.Route("/r", cfg, func(x Ctx) error {
				calls.Add(1)
				return tc.Handler(x)
			})
			wantBody := tc.Body
			if wantBody == "" && !strings.Contains(tc.Name, "writes nothing") {
				wantBody = "body"
			}
			hdr := tc.Header
			for i := 1; i <= 2; i++ {
				rec := Do(app, or(tc.Method, http.MethodGet), "/r", hdr...)
				if got, want := rec.Code, or(tc.Status, http.StatusOK); got != want {
					t.Fatalf("request %d: status %d; want %d", i, got, want)
				}
				if wantBody != "-" && rec.Body.String() != wantBody {
					t.Fatalf("request %d: body %q; want %q", i, rec.Body.String(), wantBody)
				}
				wantCS := tc.CS
				if i == 2 && tc.Stored {
					wantCS = hitMinute
				}
				if got := cacheStatus(rec.Header()); !slices.Contains(strings.Split(wantCS, " | "), got) {
					t.Errorf("request %d: Cache-Status %q; want %q", i, got, wantCS)
				}
			}
			settle(t, c)
			st := c.Stats()
			if tc.Stored {
				if calls.Load() != 1 || st.Hits != 1 || st.Stores != 1 || st.TotalBypasses() != 0 {
					t.Errorf("stored: %d runs, %d hits, %d stores, bypasses %v; want 1, 1, 1, none", calls.Load(), st.Hits, st.Stores, st.Bypasses)
				}
				return
			}
			if calls.Load() != 2 || st.Hits != 0 || st.Stores != 0 {
				t.Errorf("not stored: %d runs, %d hits, %d stores; want 2, 0, 0", calls.Load(), st.Hits, st.Stores)
			}
			switch {
			case tc.Reason != "" && st.Bypasses[tc.Reason] != 2:
				t.Errorf("bypasses %v; want 2 of %s", st.Bypasses, tc.Reason)
			case tc.Reason == "" && !tc.Anything && st.TotalBypasses() != 0:
				t.Errorf("bypasses %v; want none", st.Bypasses)
			}
		})
	}
}

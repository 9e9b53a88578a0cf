package routetest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/echocache/echocache/echocache"
)

// A stored page is the whole, final answer a plain request for its key
// gets. These tests give the route answers that are not, and check that a
// plain request afterwards runs the handler instead of getting them.

// ErrorsInside is implemented by a Frontend whose handlers return no
// errors (net/http): its adapter answers a suite handler's error inside
// the route, as part of the response, where Echo's error handler answers
// it after the middleware. Cases about handler errors written after the
// response started do not apply to it.
type ErrorsInside interface {
	ErrorsInside()
}

func answersErrorsInside(fe Frontend) bool {
	_, ok := fe.(ErrorsInside)
	return ok
}

// bypassed checks that c counted want bypasses of reason, once the
// requests' writes have settled.
func bypassed(t *testing.T, c *echocache.Cache, reason echocache.BypassReason, want uint64) {
	t.Helper()
	settle(t, c)
	if got := c.Stats().Bypasses[reason]; got != want {
		t.Errorf("bypasses %v; want %d of %s", c.Stats().Bypasses, want, reason)
	}
}

// declaredLength: the Content-Length a handler declares must be the
// length of the body it wrote: net/http cuts the connection on a short
// body and refuses a long one, so neither is what a client gets.
func declaredLength(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tt := range []struct {
		name     string
		declared string
		stored   bool
	}{
		{name: "ok, the length written", declared: "5", stored: true},
		{name: "nok, longer than written", declared: "10"},
		{name: "nok, shorter than written", declared: "3"},
		{name: "nok, not a number", declared: "five"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			app.Route("/l", Config{TTL: minute}, func(x Ctx) error {
				x.Response().Header().Set("Content-Length", tt.declared)
				return writeText(x, http.StatusOK, "hello")
			})
			Do(app, "", "/l")
			settle(t, c)
			second := Do(app, "", "/l")
			if tt.stored {
				if second.Header().Get("X-Cache") != "HIT" || second.Body.String() != "hello" {
					t.Errorf("second request: X-Cache %q, body %q; want HIT, hello", second.Header().Get("X-Cache"), second.Body.String())
				}
				return
			}
			if got := second.Header().Get("X-Cache"); got != "MISS" {
				t.Errorf("second request: X-Cache %q; want MISS", got)
			}
			bypassed(t, c, echocache.BypassLength, 2)
		})
	}
}

// failureAfterWriting: a handler that panics (behind recovery middleware)
// or returns an error after writing part of its page has its response go
// out as it is, and nothing stored.
func failureAfterWriting(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tt := range []struct {
		name   string
		fail   func() error
		reason echocache.BypassReason
	}{
		{name: "nok, a panic behind recovery middleware", fail: func() error { panic("after writing") }, reason: echocache.BypassPanic},
		{name: "nok, an error", fail: func() error { return errHandler }, reason: echocache.BypassError},
	} {
		if tt.reason == echocache.BypassError && answersErrorsInside(fe) {
			// A net/http handler returns no error: what the suite's
			// adapter writes for one is part of a whole 200 answer.
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			app.Route("/p", Config{TTL: minute}, func(x Ctx) error {
				x.Response().WriteHeader(http.StatusOK)
				_, _ = io.WriteString(x.Response(), "part 1;")
				if calls.Add(1) == 1 {
					return tt.fail()
				}
				_, _ = io.WriteString(x.Response(), "part 2")
				return nil
			})
			h := recovering(app)
			if got := Do(h, "", "/p").Body.String(); got != "part 1;" {
				t.Errorf("the failing request's body %q; want what was written, part 1;", got)
			}
			settle(t, c)
			plain := Do(h, "", "/p")
			if plain.Header().Get("X-Cache") != "MISS" || plain.Body.String() != "part 1;part 2" {
				t.Errorf("then: X-Cache %q, body %q; want MISS and the whole page", plain.Header().Get("X-Cache"), plain.Body.String())
			}
			bypassed(t, c, tt.reason, 1)
		})
	}
}

// trailers: trailers are sent after the body and are not stored, so a
// page with trailers is not stored either.
func trailers(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tt := range []struct {
		name     string
		declared bool // declared in Trailer, else set with http.TrailerPrefix
	}{
		{name: "nok, declared in Trailer", declared: true},
		{name: "nok, set with http.TrailerPrefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			app.Route("/t", Config{TTL: minute}, func(x Ctx) error {
				h := x.Response().Header()
				if tt.declared {
					h.Set("Trailer", "X-Checksum")
				}
				if err := writeText(x, http.StatusOK, "body"); err != nil {
					return err
				}
				if tt.declared {
					h.Set("X-Checksum", "abc")
				} else {
					_ = http.NewResponseController(x.Response()).Flush() // chunked, so that trailers can follow
					h.Set(http.TrailerPrefix+"X-Checksum", "abc")
				}
				return nil
			})
			srv := httptest.NewServer(app)
			defer srv.Close()
			for i := range 2 {
				resp, err := http.Get(srv.URL + "/t")
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
					t.Errorf("request %d: trailer X-Checksum %q; want the client to get abc", i+1, got)
				}
				if got := resp.Header.Get("X-Cache"); got != "MISS" {
					t.Errorf("request %d: X-Cache %q; want MISS", i+1, got)
				}
				settle(t, c)
			}
			bypassed(t, c, echocache.BypassTrailer, 2)
		})
	}
}

// headerCase: header names in any case are seen by every rule, on the
// response (a handler assigning the map directly) and on the request
// (middleware outside the cache doing the same).
func headerCase(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	setRaw := func(name string, values ...string) Handler {
		return func(x Ctx) error {
			x.Response().Header()[name] = values
			return writeText(x, http.StatusOK, "body")
		}
	}
	// rawRequest answers with the request's headers of one name, in
	// every spelling.
	rawRequest := func(name string) Handler {
		return func(x Ctx) error {
			var vs []string
			for k, v := range x.Request().Header {
				if strings.EqualFold(k, name) {
					vs = append(vs, v...)
				}
			}
			return writeText(x, http.StatusOK, name+"="+strings.Join(vs, ","))
		}
	}
	for _, tt := range []struct {
		name    string
		cfg     Config
		handler Handler
		first   []string               // headers of the first request
		second  []string               // and of the second
		reason  echocache.BypassReason // the bypass counted, if the first is not stored
		times   uint64                 // how many times (default 2: both requests)
	}{
		{name: "response set-cookie", handler: setRaw("set-cookie", "sid=secret"), reason: echocache.BypassSetCookie},
		{name: "response cache-control private", handler: setRaw("cache-control", "private"), reason: echocache.BypassCacheControl},
		{name: "response cache-control no-store", handler: setRaw("CACHE-CONTROL", "no-store"), reason: echocache.BypassCacheControl},
		{name: "response vary *", handler: setRaw("vary", "*"), reason: echocache.BypassVary},
		{name: "response vary Cookie", handler: setRaw("vary", "Cookie"), first: []string{"Cookie", "sid=a"}, second: []string{"Cookie", "sid=b"}},
		{name: "response content-length", handler: setRaw("content-length", "999"), reason: echocache.BypassLength},
		{name: "response trailer", handler: setRaw("trailer", "X-Checksum"), reason: echocache.BypassTrailer},
		{name: "response content-type event stream", handler: setRaw("content-type", "text/event-stream"), reason: echocache.BypassEventStream},
		{name: "request authorization", handler: rawRequest("Authorization"),
			first: []string{"X-Lower-Authorization", "Bearer a"}, reason: echocache.BypassAuthorization, times: 1},
		{name: "request accept-language in VaryHeaders", handler: rawRequest("Accept-Language"),
			cfg:   Config{VaryHeaders: []string{"Accept-Language"}},
			first: []string{"X-Lower-Accept-Language", "fr"}, reason: echocache.BypassHeaderCase, times: 1},
		{name: "request cookie named by the response's Vary", handler: func(x Ctx) error {
			x.Response().Header().Set("Vary", "Cookie")
			return rawRequest("Cookie")(x)
		}, first: []string{"X-Lower-Cookie", "sid=a"}, reason: echocache.BypassHeaderCase, times: 1},
	} {
		t.Run("nok, "+tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			cfg := tt.cfg
			cfg.TTL = minute
			app.Route("/n", cfg, func(x Ctx) error {
				calls.Add(1)
				return tt.handler(x)
			})
			// lowerRequest copies X-Lower-<Name> request headers to <name>
			// in lower case, as middleware assigning the map would.
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, vs := range r.Header {
					if name, ok := strings.CutPrefix(k, "X-Lower-"); ok {
						r.Header[strings.ToLower(name)] = vs
					}
				}
				app.ServeHTTP(w, r)
			})
			Do(h, "", "/n", tt.first...)
			settle(t, c)
			second := Do(h, "", "/n", tt.second...)
			if got := second.Header().Get("X-Cache"); got != "MISS" {
				t.Errorf("second request: X-Cache %q; want MISS: the first answer was not to be shared", got)
			}
			if got := calls.Load(); got != 2 {
				t.Errorf("the handler ran %d times; want 2", got)
			}
			if tt.reason != "" {
				bypassed(t, c, tt.reason, or(tt.times, 2))
			}
			if v := second.Header().Values("Set-Cookie"); len(v) > 0 {
				t.Errorf("second request got a cookie: %v", v)
			}
		})
	}
}

// contextEnded: a handler that turns an ended context into an ordinary
// answer ("no results") must not have that answer stored when the
// deadline was set outside the cache; a deadline not reached stores the
// page. (A deadline set by middleware inside the cache, which only Echo's
// per-route middleware can put there, is tested with Echo v4.)
func contextEnded(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tt := range []struct {
		name       string
		firstWaits bool // the first call waits for its context to end
	}{
		{name: "nok, outer deadline passed", firstWaits: true},
		{name: "ok, outer deadline not reached"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			var pass func() // ends the first request's deadline
			app.Route("/q", Config{TTL: minute}, func(x Ctx) error {
				if tt.firstWaits && calls.Add(1) == 1 {
					pass()
					<-x.Request().Context().Done()
					return writeText(x, http.StatusOK, "no results")
				}
				return writeText(x, http.StatusOK, "results")
			})
			// The first request gets a deadline that passes when its
			// handler starts: one set earlier would also bound the store
			// calls, and a loaded store's lookup could outlast it.
			ctx := &deadlineCtx{Context: context.Background(), done: make(chan struct{})}
			pass = ctx.pass
			req := httptest.NewRequest(http.MethodGet, "/q", nil)
			if tt.firstWaits {
				req = req.WithContext(ctx)
			}
			first := httptest.NewRecorder()
			app.ServeHTTP(first, req)
			if first.Code != http.StatusOK {
				t.Fatalf("first request: status %d; want 200", first.Code)
			}
			settle(t, c)
			second := Do(app, "", "/q")
			if tt.firstWaits {
				if first.Body.String() != "no results" {
					t.Errorf("first request: body %q; want no results", first.Body.String())
				}
				if cs := first.Header().Get("Cache-Status"); strings.Contains(cs, "stored") || !strings.Contains(cs, "detail="+string(echocache.BypassContext)) {
					t.Errorf("first request: Cache-Status %q; want detail=%s, not stored", cs, echocache.BypassContext)
				}
				if got := second.Header().Get("X-Cache"); got != "MISS" {
					t.Errorf("second request: X-Cache %q; want MISS: the answer after the deadline was stored", got)
				}
				bypassed(t, c, echocache.BypassContext, 1)
				second = Do(app, "", "/q")
			}
			if second.Header().Get("X-Cache") != "HIT" || second.Body.String() != "results" {
				t.Errorf("then: X-Cache %q, body %q; want HIT, results", second.Header().Get("X-Cache"), second.Body.String())
			}
		})
	}
}

// deadlineCtx is a request context whose deadline passes when pass is
// called: Done closes and Err reports context.DeadlineExceeded, as for a
// deadline set with context.WithTimeout, at a moment the test chooses.
type deadlineCtx struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func (c *deadlineCtx) pass()                 { c.once.Do(func() { close(c.done) }) }
func (c *deadlineCtx) Done() <-chan struct{} { return c.done }

func (c *deadlineCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

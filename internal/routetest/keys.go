package routetest

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
)

// Req is a request of a key case.
type Req struct {
	Method, Target string
	Header         []string
}

func get(target string, hdr ...string) Req { return Req{http.MethodGet, target, hdr} }

// KeyCase: after A is stored, B is answered from A's page (Shared) or is a
// page of its own.
type KeyCase struct {
	Name   string
	Config Config
	Vary   string // the Vary header the handler sets
	A, B   Req
	Shared bool
}

// KeyCases is the table of what keys pages apart.
var KeyCases = []KeyCase{
	{Name: "ok, same URL", A: get("/p?a=1"), B: get("/p?a=1"), Shared: true},
	{Name: "ok, query order does not matter", A: get("/p?a=1&b=2"), B: get("/p?b=2&a=1"), Shared: true},
	{Name: "ok, equivalent encodings", A: get("/p?a=%61&q=x+y"), B: get("/p?a=a&q=x%20y"), Shared: true},
	{Name: "ok, utm_* and click ids are ignored", A: get("/p?a=1"), B: get("/p?utm_source=x&a=1&fbclid=y&utm_medium=z"), Shared: true},
	{Name: "nok, another query value", A: get("/p?a=1"), B: get("/p?a=2")},
	{Name: "nok, a query vs none", A: get("/p"), B: get("/p?a=1")},
	{Name: "nok, repeated values in another order", A: get("/p?a=1&a=2"), B: get("/p?a=2&a=1")},
	{Name: "nok, another path", A: get("/p"), B: get("/q")},
	{Name: "nok, escaped slash is another path", A: get("/a%2Fb"), B: get("/a/b")},
	{Name: "nok, another host", A: get("/p", "Host", "a.example"), B: get("/p", "Host", "b.example")},
	{Name: "ok, host is case-insensitive", A: get("/p", "Host", "Example.COM"), B: get("/p", "Host", "example.com"), Shared: true},
	{Name: "nok, another scheme", A: get("http://example.com/p"), B: get("https://example.com/p")},
	{Name: "nok, undecodable query stays apart from its decoded look-alike", A: get("/p?a=%zz"), B: get("/p?a=%25zz")},
	{Name: "nok, an empty ignore list keeps utm parameters", Config: Config{IgnoreQueryParams: []string{}},
		A: get("/p?utm_source=1"), B: get("/p?utm_source=2")},
	{Name: "ok, DropQuery ignores the query (Flask-Cache's behaviour)", Config: Config{DropQuery: true},
		A: get("/p?a=1"), B: get("/p?a=2"), Shared: true},
	{Name: "ok, KeyPrefix without %s shares one page across paths", Config: Config{KeyPrefix: "zen"},
		A: get("/p"), B: get("/q"), Shared: true},
	{Name: "nok, KeyPrefix with %s keeps paths apart", Config: Config{KeyPrefix: "view/%s"}, A: get("/p"), B: get("/q")},
	{Name: "ok, KeyPrefix with %s, same path", Config: Config{KeyPrefix: "view/%s"}, A: get("/p?x=1"), B: get("/p?x=1"), Shared: true},
	{Name: "ok, KeyFunc decides", Config: Config{KeyFunc: queryID},
		A: get("/p?id=7&x=1"), B: get("/q?id=7&x=2", "Host", "other.example"), Shared: true},
	{Name: "nok, KeyFunc gives another key", Config: Config{KeyFunc: queryID}, A: get("/p?id=7"), B: get("/p?id=8")},
	{Name: "nok, configured vary header differs", Config: Config{VaryHeaders: []string{"accept-language"}},
		A: get("/p", "Accept-Language", "en"), B: get("/p", "Accept-Language", "fr")},
	{Name: "ok, configured vary header equal", Config: Config{VaryHeaders: []string{"Accept-Language"}},
		A: get("/p", "Accept-Language", "en"), B: get("/p", "Accept-Language", "en"), Shared: true},
	{Name: "nok, configured vary header absent vs empty", Config: Config{VaryHeaders: []string{"Accept-Language"}},
		A: get("/p"), B: get("/p", "Accept-Language", "")},
	{Name: "nok, the response's Vary is honoured", Vary: "Accept-Encoding",
		A: get("/p", "Accept-Encoding", "gzip"), B: get("/p", "Accept-Encoding", "br")},
	{Name: "ok, the response's Vary with the same value", Vary: "Accept-Encoding, X-Tenant",
		A: get("/p", "Accept-Encoding", "gzip", "X-Tenant", "a"), B: get("/p", "Accept-Encoding", "gzip", "X-Tenant", "a"), Shared: true},
	{Name: "nok, the response's Vary, second header differs", Vary: "Accept-Encoding, X-Tenant",
		A: get("/p", "Accept-Encoding", "gzip", "X-Tenant", "a"), B: get("/p", "Accept-Encoding", "gzip", "X-Tenant", "b")},
	{Name: "ok, HEAD shares the GET entry", A: get("/p"), B: Req{Method: http.MethodHead, Target: "/p"}, Shared: true},
}

func queryID(r *http.Request) string { return r.URL.Query().Get("id") }

func runKeys(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	for _, tc := range KeyCases {
		t.Run(tc.Name, func(t *testing.T) {
			app := fe.NewApp(t, open(t))
			var calls atomic.Int64
			cfg := tc.Config
			cfg.TTL = time.Minute
			app.Route("/*", cfg, func(c Ctx) error {
				n := calls.Add(1)
				if tc.Vary != "" {
					c.Response().Header().Set("Vary", tc.Vary)
				}
				_, err := c.Response().Write([]byte("call " + strconv.FormatInt(n, 10)))
				return err
			})
			ra := Do(app, tc.A.Method, tc.A.Target, tc.A.Header...)
			if ra.Code != http.StatusOK || ra.Header().Get("X-Cache") != "MISS" {
				t.Fatalf("%s %s: status %d, X-Cache %q; want 200, MISS", tc.A.Method, tc.A.Target, ra.Code, ra.Header().Get("X-Cache"))
			}
			rb := Do(app, tc.B.Method, tc.B.Target, tc.B.Header...)
			if rb.Code != http.StatusOK {
				t.Fatalf("%s %s: status %d", tc.B.Method, tc.B.Target, rb.Code)
			}
			switch got := rb.Header().Get("X-Cache"); {
			case !tc.Shared && (got != "MISS" || rb.Body.String() != "call 2" || calls.Load() != 2):
				t.Errorf("%s %s after %s: X-Cache %q, body %q, %d runs; want a page of its own", tc.B.Method, tc.B.Target, tc.A.Target, got, rb.Body.String(), calls.Load())
			case tc.Shared && (got != "HIT" || calls.Load() != 1):
				t.Errorf("%s %s after %s: X-Cache %q, %d runs; want a hit on the first page", tc.B.Method, tc.B.Target, tc.A.Target, got, calls.Load())
			case tc.Shared && tc.B.Method == http.MethodHead && (rb.Body.Len() != 0 || rb.Header().Get("Content-Length") != "6"):
				t.Errorf("HEAD hit: body %q, Content-Length %q; want none and 6", rb.Body.String(), rb.Header().Get("Content-Length"))
			case tc.Shared && tc.B.Method != http.MethodHead && rb.Body.String() != "call 1":
				t.Errorf("hit: body %q; want the first page", rb.Body.String())
			}
		})
	}
}

// variants: the variants of one page (Vary) and of several hosts are
// stored side by side; alternating requests do not evict each other.
func variants(t *testing.T, fe Frontend, c *echocache.Cache) {
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	app.Route("/p", Config{TTL: time.Minute}, func(x Ctx) error {
		n := calls.Add(1)
		x.Response().Header().Set("Vary", "Accept-Language")
		_, err := x.Response().Write([]byte(x.Request().Host + " " + x.Request().Header.Get("Accept-Language") + " " + strconv.FormatInt(n, 10)))
		return err
	})
	hosts, langs := []string{"a.example", "b.example"}, []string{"en", "fr"}
	for _, host := range hosts {
		for _, lang := range langs {
			Do(app, "", "/p", "Host", host, "Accept-Language", lang)
		}
	}
	for i, host := range hosts {
		for j, lang := range langs {
			rec := Do(app, "", "/p", "Host", host, "Accept-Language", lang)
			want := host + " " + lang + " " + strconv.Itoa(i*2+j+1)
			if rec.Header().Get("X-Cache") != "HIT" || rec.Body.String() != want {
				t.Errorf("%s %s: X-Cache %q, body %q; want HIT, %q", host, lang, rec.Header().Get("X-Cache"), rec.Body.String(), want)
			}
		}
	}
	if calls.Load() != 4 {
		t.Errorf("the handler ran %d times; want 4", calls.Load())
	}
}

// conditional: a hit answers If-None-Match with 304 (weak comparison,
// lists, *), from the generated ETag or the handler's own, with only the
// headers a 304 carries (RFC 9110, 15.4.5).
func conditional(t *testing.T, fe Frontend, c *echocache.Cache) {
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	app.Route("/gen", Config{TTL: time.Minute}, func(x Ctx) error { return page(calls.Add(1), x) })
	app.Route("/own", Config{TTL: time.Minute}, func(x Ctx) error {
		calls.Add(1)
		h := x.Response().Header()
		h.Set("ETag", `W/"v7"`)
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("X-Extra", "1")
		_, err := x.Response().Write([]byte("own"))
		return err
	})
	Do(app, "", "/gen")
	etag := Do(app, "", "/gen").Header().Get("ETag")
	if etag == "" {
		t.Fatal("a hit without an ETag")
	}
	Do(app, "", "/own")
	for _, tt := range []struct {
		name, path, inm string
		want            int
	}{
		{"ok, generated ETag matches", "/gen", etag, http.StatusNotModified},
		{"ok, matches in a list", "/gen", `"nope", ` + etag, http.StatusNotModified},
		{"ok, weak comparison", "/gen", "W/" + etag, http.StatusNotModified},
		{"ok, star", "/gen", "*", http.StatusNotModified},
		{"nok, another ETag", "/gen", `"nope"`, http.StatusOK},
		{"ok, the handler's own ETag", "/own", `W/"v7"`, http.StatusNotModified},
		{"ok, the handler's own ETag, strong form", "/own", `"v7"`, http.StatusNotModified},
		{"nok, no If-None-Match", "/own", "", http.StatusOK},
	} {
		var hdr []string
		if tt.inm != "" {
			hdr = []string{"If-None-Match", tt.inm}
		}
		rec := Do(app, "", tt.path, hdr...)
		h := rec.Header()
		switch {
		case rec.Code != tt.want || h.Get("X-Cache") != "HIT":
			t.Errorf("%s: status %d, X-Cache %q; want %d, HIT", tt.name, rec.Code, h.Get("X-Cache"), tt.want)
		case tt.want == http.StatusNotModified && (rec.Body.Len() > 0 || h.Get("ETag") == "" || h.Get("Content-Type") != "" || h.Get("X-Extra") != ""):
			t.Errorf("%s: a 304 with body %q, ETag %q, Content-Type %q, X-Extra %q; want only the validators", tt.name, rec.Body.String(), h.Get("ETag"), h.Get("Content-Type"), h.Get("X-Extra"))
		case tt.want == http.StatusOK && rec.Body.Len() == 0:
			t.Errorf("%s: no body", tt.name)
		}
	}
	if got := Do(app, "", "/own", "If-None-Match", `"v7"`).Header().Get("Cache-Control"); got != "public, max-age=60" {
		t.Errorf("a 304's Cache-Control %q; want the page's", got)
	}
	if calls.Load() != 2 {
		t.Errorf("the handlers ran %d times; want 2", calls.Load())
	}
}

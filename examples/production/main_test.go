package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/stores"
)

func newTestServer(t *testing.T) *echo.Echo {
	t.Helper()
	store, err := stores.OpenAndPing(t.Context(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e, err := newServer(store)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func do(e *echo.Echo, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// The middleware in front of the cache does its work on every response,
// hits included: its own request ID, the CORS headers of its own Origin,
// gzip for the clients that ask, plain for the others. Gzip and CORS say
// Vary: Accept-Encoding and Vary: Origin, which the cache honours: it
// keeps a variant of the page per value of those headers.
func TestMiddlewareOrder(t *testing.T) {
	e := newTestServer(t)
	pair := func(header ...string) (miss, hit *httptest.ResponseRecorder) {
		t.Helper()
		miss, hit = do(e, http.MethodGet, "/", header...), do(e, http.MethodGet, "/", header...)
		if miss.Header().Get("X-Cache") != "MISS" || hit.Header().Get("X-Cache") != "HIT" || hit.Body.String() != miss.Body.String() {
			t.Fatalf("GET / %q twice: X-Cache %q then %q, bodies %q, %q; want a miss, then a hit with its body",
				header, miss.Header().Get("X-Cache"), hit.Header().Get("X-Cache"), miss.Body.String(), hit.Body.String())
		}
		return miss, hit
	}
	plainMiss, plainHit := pair()
	gzMiss, gzHit := pair("Accept-Encoding", "gzip")
	originMiss, originHit := pair("Origin", "https://app.example")

	all := []*httptest.ResponseRecorder{plainMiss, plainHit, gzMiss, gzHit, originMiss, originHit}
	ids := map[string]bool{}
	for _, r := range all {
		ids[r.Header().Get(echo.HeaderXRequestID)] = true
	}
	if len(ids) != len(all) || ids[""] {
		t.Errorf("request IDs %v; want %d different ones (a hit must not replay the miss's)", ids, len(all))
	}
	if got := originHit.Header().Get(echo.HeaderAccessControlAllowOrigin); got != "https://app.example" {
		t.Errorf("hit with Origin: Access-Control-Allow-Origin = %q; want the origin", got)
	}
	if got := plainHit.Header().Get(echo.HeaderAccessControlAllowOrigin); got != "" {
		t.Errorf("hit without Origin: Access-Control-Allow-Origin = %q; want none", got)
	}
	if got := gzHit.Header().Get(echo.HeaderContentEncoding); got != "gzip" {
		t.Fatalf("hit with Accept-Encoding: gzip: Content-Encoding = %q; want gzip", got)
	}
	zr, err := gzip.NewReader(gzHit.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), "<p>0 posts; rendered at ") {
		t.Errorf("gzip hit decompresses to %q; want the page", body)
	}
	if got := plainHit.Header().Get(echo.HeaderContentEncoding); got != "" || !strings.HasPrefix(plainHit.Body.String(), "<p>0 posts;") {
		t.Errorf("plain hit: Content-Encoding %q, body %q; want the page uncompressed", got, plainHit.Body.String())
	}
}

// POST / runs under the same middleware, is never cached, and drops the
// page it changed; a request with Authorization bypasses the cache.
func TestPostAndAuthorization(t *testing.T) {
	e := newTestServer(t)
	first := do(e, http.MethodGet, "/").Body.String()
	if !strings.HasPrefix(first, "<p>0 posts;") {
		t.Fatalf("GET / = %q; want 0 posts", first)
	}
	for i := 1; i <= 2; i++ {
		post := do(e, http.MethodPost, "/")
		if got, want := post.Body.String(), "post "+strconv.Itoa(i)+"\n"; got != want || post.Header().Get("X-Cache") != "" {
			t.Errorf("POST / = %q (X-Cache %q); want %q, uncached", got, post.Header().Get("X-Cache"), want)
		}
	}
	after := do(e, http.MethodGet, "/")
	if !strings.HasPrefix(after.Body.String(), "<p>2 posts;") || after.Header().Get("X-Cache") != "MISS" {
		t.Errorf("GET / after two posts = %q (%s); want a fresh page with 2 posts", after.Body.String(), after.Header().Get("X-Cache"))
	}
	auth := do(e, http.MethodGet, "/", "Authorization", "Bearer x")
	if auth.Body.String() == after.Body.String() || auth.Header().Get("X-Cache") != "" {
		t.Errorf("GET / with Authorization = %q (X-Cache %q); want a page of its own, uncached", auth.Body.String(), auth.Header().Get("X-Cache"))
	}
}

// /metrics is served on the same address, uncached, and its counters
// follow the cache.
func TestMetrics(t *testing.T) {
	e := newTestServer(t)
	do(e, http.MethodGet, "/")
	hits := func() int {
		t.Helper()
		rec := do(e, http.MethodGet, "/metrics")
		if rec.Code != http.StatusOK || rec.Header().Get("X-Cache") != "" {
			t.Fatalf("GET /metrics = %d (X-Cache %q); want 200, uncached", rec.Code, rec.Header().Get("X-Cache"))
		}
		m := regexp.MustCompile(`(?m)^echocache_lookups_total\{feature="page",result="hit"\} (\d+)$`).FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Fatalf("GET /metrics has no page hit counter:\n%s", rec.Body.String())
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	before := hits()
	do(e, http.MethodGet, "/")
	do(e, http.MethodGet, "/")
	if after := hits(); after != before+2 {
		t.Errorf("page hits went from %d to %d after two hits; want +2", before, after)
	}

	// Compressed once, by the Gzip middleware.
	rec := do(e, http.MethodGet, "/metrics", "Accept-Encoding", "gzip")
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatalf("GET /metrics with gzip: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(body), "echocache_lookups_total{") {
		t.Errorf("GET /metrics with gzip decompresses to %.200q, %v; want the metrics", body, err)
	}
}

// A browser's reload sends Cache-Control: no-cache (and Pragma: no-cache);
// the app's own cache does not let a client choose to skip it.
func TestReloadIsAHit(t *testing.T) {
	e := newTestServer(t)
	first := do(e, http.MethodGet, "/")
	for _, h := range [][]string{{"Cache-Control", "no-cache"}, {"Cache-Control", "max-age=0"}, {"Pragma", "no-cache"}, {"Cache-Control", "no-store"}} {
		rec := do(e, http.MethodGet, "/", h...)
		if rec.Header().Get("X-Cache") != "HIT" || rec.Body.String() != first.Body.String() {
			t.Errorf("GET / with %s: %s = %q (X-Cache %q); want the cached page", h[0], h[1], rec.Body.String(), rec.Header().Get("X-Cache"))
		}
	}
}

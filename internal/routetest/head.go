package routetest

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/echocache/echocache/echocache"
)

// headFromGet: a HEAD to a route that serves HEAD is answered from the
// GET's page: its status and headers (Content-Type, ETag, a Content-Length
// for the body it leaves out), no body. A HEAD that misses runs the
// handler and stores nothing. (Which routes a framework sends HEAD to, and
// Echo's 405 for a GET-only route, are each front end's own tests.)
func headFromGet(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	const body = "<p>page</p>"
	c := open(t)
	app := fe.NewApp(t, c)
	app.Route("/h", Config{TTL: minute}, func(x Ctx) error {
		x.Response().Header().Set("Content-Type", "text/html; charset=UTF-8")
		return writeText2(x, body)
	})
	cold := Do(app, http.MethodHead, "/h")
	// (The handler's body is the server's to drop, not the cache's.)
	if cold.Code != http.StatusOK || cold.Header().Get("X-Cache") != "MISS" {
		t.Errorf("cold HEAD: status %d, X-Cache %q; want 200, MISS", cold.Code, cold.Header().Get("X-Cache"))
	}
	settle(t, c)
	if rec := Do(app, "", "/h"); rec.Header().Get("X-Cache") != "MISS" {
		t.Errorf("GET after a cold HEAD: X-Cache %q; want MISS: a HEAD stores nothing", rec.Header().Get("X-Cache"))
	}
	settle(t, c)
	get := Do(app, "", "/h")
	if get.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("GET: X-Cache %q; want HIT, the GET's page stored", get.Header().Get("X-Cache"))
	}
	warm := Do(app, http.MethodHead, "/h")
	if warm.Code != http.StatusOK || warm.Header().Get("X-Cache") != "HIT" || warm.Body.Len() != 0 {
		t.Errorf("HEAD with the page stored: status %d, X-Cache %q, body %q; want 200, HIT, none", warm.Code, warm.Header().Get("X-Cache"), warm.Body.String())
	}
	for name, want := range map[string]string{
		"Content-Length": strconv.Itoa(len(body)),
		"Content-Type":   get.Header().Get("Content-Type"),
		"Etag":           get.Header().Get("Etag"),
	} {
		if got := warm.Header().Get(name); got != want || want == "" {
			t.Errorf("HEAD hit: %s %q; want the GET's, %q", name, got, want)
		}
	}
}

// writeText2 writes body with status 200 and the Content-Type already set.
func writeText2(x Ctx, body string) error {
	x.Response().WriteHeader(http.StatusOK)
	_, err := x.Response().Write([]byte(body))
	return err
}

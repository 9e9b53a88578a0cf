package routetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/echocache/echocache/echocache"
)

// declaredHitLength: through a real server, a hit declares its
// Content-Length whatever the body's size, so a page larger than
// net/http's 2 KiB buffer is not sent chunked; a hit with no content
// (204) declares none, for GET or HEAD (RFC 9110 §8.6).
func declaredHitLength(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	c := open(t)
	app := fe.NewApp(t, c)
	app.Route("/len/*", Config{TTL: minute, AllowedStatuses: []int{http.StatusOK, http.StatusNoContent}}, func(x Ctx) error {
		r := x.Request()
		if r.URL.Path == "/len/none" {
			x.Response().WriteHeader(http.StatusNoContent)
			return nil
		}
		n := len(r.URL.Path) * 1024 // /len/large: 10 KiB; /len/ and 64 bytes: 69 KiB
		if r.URL.Path == "/len/small" {
			n = 100
		}
		x.Response().Header().Set("Content-Type", "text/plain")
		_, err := io.WriteString(x.Response(), strings.Repeat("b", n))
		return err
	})
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v", method, path, err)
		}
		return res, string(b)
	}
	for _, path := range []string{"/len/small", "/len/large", "/len/" + strings.Repeat("x", 64)} {
		_, miss := do(http.MethodGet, path)
		settle(t, c)
		res, body := do(http.MethodGet, path)
		if res.Header.Get("X-Cache") != "HIT" || body != miss {
			t.Fatalf("GET %s: X-Cache %q, %d bytes; want HIT and the miss's %d", path, res.Header.Get("X-Cache"), len(body), len(miss))
		}
		if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) != 0 {
			t.Errorf("GET %s hit (%d bytes): Content-Length %d, Transfer-Encoding %q; want the length declared, not chunked",
				path, len(body), res.ContentLength, res.TransferEncoding)
		}
		head, _ := do(http.MethodHead, path)
		if head.Header.Get("X-Cache") != "HIT" || head.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %s hit: X-Cache %q, Content-Length %d; want HIT, %d", path, head.Header.Get("X-Cache"), head.ContentLength, len(body))
		}
	}
	do(http.MethodGet, "/len/none")
	settle(t, c)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		res, _ := do(method, "/len/none")
		if res.StatusCode != http.StatusNoContent || res.Header.Get("X-Cache") != "HIT" {
			t.Fatalf("%s 204: status %d, X-Cache %q; want 204, HIT", method, res.StatusCode, res.Header.Get("X-Cache"))
		}
		if v, ok := res.Header["Content-Length"]; ok {
			t.Errorf("%s 204 hit: Content-Length %q; a 204 declares none", method, v)
		}
	}
}

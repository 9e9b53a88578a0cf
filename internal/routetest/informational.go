package routetest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"testing"

	"github.com/echocache/echocache/echocache"
)

// Informer is implemented by a Ctx whose Response() takes a first
// WriteHeader for the final status (Echo v4's *echo.Response): Inform
// sends an informational (1xx) response through the route's writer under
// it instead.
type Informer interface {
	Inform(code int)
}

// inform sends an informational response of code ahead of the final one.
func inform(x Ctx, code int) {
	if i, ok := x.(Informer); ok {
		i.Inform(code)
		return
	}
	x.Response().WriteHeader(code)
}

// informational: an informational response (103 Early Hints) before the
// final one reaches the client, and the final response is the page.
func informational(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	c := open(t)
	app := fe.NewApp(t, c)
	app.Route("/hints", Config{TTL: minute}, func(x Ctx) error {
		x.Response().Header().Set("Link", "</app.css>; rel=preload")
		inform(x, http.StatusEarlyHints)
		return writeText(x, http.StatusOK, "hinted")
	})
	srv := httptest.NewServer(app)
	defer srv.Close()

	var hints []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		hints = append(hints, code)
		return nil
	}}
	get := func(ctx context.Context) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hints", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := get(httptrace.WithClientTrace(context.Background(), trace))
	if len(hints) != 1 || hints[0] != http.StatusEarlyHints || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: 1xx %v, status %d; want the hints (103) to reach the client, then 200", hints, resp.StatusCode)
	}
	settle(t, c)
	resp, body := get(context.Background())
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") != "HIT" || body != "hinted" {
		t.Errorf("then: status %d, X-Cache %q, body %q; want 200, HIT, hinted: the final response is stored", resp.StatusCode, resp.Header.Get("X-Cache"), body)
	}
	if got := resp.Header.Get("Link"); got != "</app.css>; rel=preload" {
		t.Errorf("hit: Link %q; want the page's", got)
	}
}

package echocache

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/stores"
)

var routeBenchBody = bytes.Repeat([]byte("echocache "), 2048/10+1)[:2048]

func routeBenchHandler(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, routeBenchBody)
}

// serverWriter is a response writer that costs what net/http's does where
// a handler can tell: a new header map per response, cloned when the
// status is written (net/http snapshots the handler's header then), and
// the body copied into a buffer (net/http's bufio.Writer). The buffer is
// reused, so the benchmarks do not measure its growth, which
// httptest.ResponseRecorder adds to every response.
type serverWriter struct {
	header http.Header
	sent   http.Header // the header as it was at WriteHeader
	code   int
	body   *bytes.Buffer
}

func newServerWriter(body *bytes.Buffer) *serverWriter {
	body.Reset()
	return &serverWriter{header: make(http.Header), body: body}
}

func (w *serverWriter) Header() http.Header { return w.header }

func (w *serverWriter) WriteHeader(code int) {
	if w.code != 0 {
		return
	}
	w.code = code
	w.sent = w.header.Clone()
}

func (w *serverWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// runRouteBench serves GET /page b.N times, each on a new serverWriter.
// c is the Cache behind e's route, or nil: its background write of the
// warm-up's page is waited for (Flush), so that the measured hits read the
// store rather than the record of a write still under way.
func runRouteBench(b *testing.B, e *echo.Echo, c *Cache) {
	b.Helper()
	runRouteBenchTarget(b, e, c, "/page")
}

// runRouteBenchTarget is runRouteBench for another target; hdr holds
// request header name/value pairs.
func runRouteBenchTarget(b *testing.B, e *echo.Echo, c *Cache, target string, hdr ...string) {
	b.Helper()
	runRouteBenchBody(b, e, c, target, routeBenchBody, hdr...)
}

// runRouteBenchBody is runRouteBenchTarget for a handler whose body is
// want.
func runRouteBenchBody(b *testing.B, e *echo.Echo, c *Cache, target string, want []byte, hdr ...string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	var body bytes.Buffer
	w := newServerWriter(&body)
	e.ServeHTTP(w, req) // warm-up; fills the cache for BenchmarkHit
	if w.code != http.StatusOK || !bytes.Equal(body.Bytes(), want) {
		b.Fatalf("warm-up: status %d, %d bytes; want 200 and the %d-byte body", w.code, body.Len(), len(want))
	}
	if c != nil {
		if err := c.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w = newServerWriter(&body)
		e.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.code != http.StatusOK || !bytes.Equal(body.Bytes(), want) {
		b.Fatalf("status %d, %d bytes; want 200 and the %d-byte body", w.code, body.Len(), len(want))
	}
}

// BenchmarkStatic is the baseline: the handler, uncached, writing 2 KiB.
func BenchmarkStatic(b *testing.B) {
	e := echo.New()
	e.GET("/page", routeBenchHandler)
	runRouteBench(b, e, nil)
}

// BenchmarkStaticHitHeaders is BenchmarkStatic writing also the four
// headers a hit adds by default (Age, Cache-Status, ETag, X-Cache), with
// values of the same lengths: BenchmarkHit less this is what the cache's
// own work costs.
func BenchmarkStaticHitHeaders(b *testing.B) {
	e := echo.New()
	e.GET("/page", func(c echo.Context) error {
		h := c.Response().Header()
		h["Age"] = []string{"0"}
		h["Cache-Status"] = []string{"echocache; hit; ttl=3599"}
		h["Etag"] = []string{`"92s2dSmPZLrO-2Io8yJYFQ"`}
		h["X-Cache"] = []string{"HIT"}
		return routeBenchHandler(c)
	})
	runRouteBench(b, e, nil)
}

// hitBenchEcho returns an app that serves GET /page with routeBenchHandler,
// cached in a memory store.
func hitBenchEcho(b *testing.B) (*echo.Echo, *Cache) {
	b.Helper()
	store, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	c := New(store)
	e := echo.New()
	// Wrapped at registration: echo v4 applies route-level middleware on
	// every request, which would add its closure to the measurement.
	e.GET("/page", c.Cached(time.Hour)(routeBenchHandler))
	return e, c
}

// BenchmarkHit serves the same handler's page from the memory store.
func BenchmarkHit(b *testing.B) {
	e, c := hitBenchEcho(b)
	runRouteBench(b, e, c)
	if got := c.Stats().Hits; got < uint64(b.N) {
		b.Fatalf("Stats().Hits = %d; want at least %d", got, b.N)
	}
}

// BenchmarkHitQuery is BenchmarkHit with a query string already in
// canonical form (the common case), which the key takes as it is.
func BenchmarkHitQuery(b *testing.B) {
	e, c := hitBenchEcho(b)
	runRouteBenchTarget(b, e, c, "/page?id=42&page=3&sort=asc")
}

// BenchmarkHitBrowser is BenchmarkHit with the request headers a browser
// sends, which the rules that read request headers in any case walk.
func BenchmarkHitBrowser(b *testing.B) {
	e, c := hitBenchEcho(b)
	runRouteBenchTarget(b, e, c, "/page",
		"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Encoding", "gzip, deflate, br, zstd",
		"Accept-Language", "en-GB,en;q=0.5",
		"Connection", "keep-alive",
		"Cookie", "theme=dark; consent=1",
		"Referer", "https://example.com/",
		"Sec-Fetch-Dest", "document",
		"Sec-Fetch-Mode", "navigate",
		"Sec-Fetch-Site", "same-origin",
		"Upgrade-Insecure-Requests", "1",
		"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
	)
}

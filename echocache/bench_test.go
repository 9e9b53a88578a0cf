package echocache

import (
	"bytes"
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

// runRouteBench serves GET /page b.N times, echo-style: one
// httptest.NewRecorder per request, like echo's own middleware benchmarks.
func runRouteBench(b *testing.B, e *echo.Echo) {
	b.Helper()
	runRouteBenchTarget(b, e, "/page")
}

// runRouteBenchTarget is runRouteBench for another target.
func runRouteBenchTarget(b *testing.B, e *echo.Echo, target string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req) // warm-up; fills the cache for BenchmarkHit
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), routeBenchBody) {
		b.Fatalf("warm-up: status %d, %d bytes; want 200 and the 2 KiB body", rec.Code, rec.Body.Len())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec = httptest.NewRecorder()
		e.ServeHTTP(rec, req)
	}
	b.StopTimer()
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), routeBenchBody) {
		b.Fatalf("status %d, %d bytes; want 200 and the 2 KiB body", rec.Code, rec.Body.Len())
	}
}

// BenchmarkStatic is the baseline: the handler, uncached, writing 2 KiB.
func BenchmarkStatic(b *testing.B) {
	e := echo.New()
	e.GET("/page", routeBenchHandler)
	runRouteBench(b, e)
}

// BenchmarkHit serves the same handler's page from the memory store. The
// hit path must stay within 1.5x the time of BenchmarkStatic and 4
// allocations more.
func BenchmarkHit(b *testing.B) {
	store, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	c := New(store)
	e := echo.New()
	// Wrapped at registration: echo v4 applies route-level middleware on
	// every request, which would add its closure to the measurement.
	e.GET("/page", c.Cached(time.Hour)(routeBenchHandler))
	runRouteBench(b, e)
	if got := c.Stats().Hits; got < uint64(b.N) {
		b.Fatalf("Stats().Hits = %d; want at least %d", got, b.N)
	}
}

// BenchmarkHitQuery is BenchmarkHit with a query string already in
// canonical form (the common case), which the key takes as it is.
func BenchmarkHitQuery(b *testing.B) {
	store, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	c := New(store)
	e := echo.New()
	e.GET("/page", c.Cached(time.Hour)(routeBenchHandler))
	runRouteBenchTarget(b, e, "/page?id=42&page=3&sort=asc")
}

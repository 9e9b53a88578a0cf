package peers

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	httpcache "github.com/SporkHubr/echo-http-cache"
	"github.com/SporkHubr/echo-http-cache/adapter/memory"
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

var body = bytes.Repeat([]byte("echocache "), 2048/10+1)[:2048]

func handler(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, body)
}

// setup is one way of serving GET /page: uncached, or through a cache.
type setup struct {
	name string
	new  func(tb testing.TB) *echo.Echo
}

var setups = []setup{
	{"static", func(testing.TB) *echo.Echo {
		e := echo.New()
		e.GET("/page", handler)
		return e
	}},
	{"echocache", func(tb testing.TB) *echo.Echo {
		store, err := stores.NewMemory(stores.MemoryConfig{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { store.Close() })
		c := echocache.New(store)
		e := echo.New()
		e.GET("/page", c.Cached(time.Hour)(handler))
		return e
	}},
	{"echo-http-cache", func(tb testing.TB) *echo.Echo {
		adapter, err := memory.NewAdapter(memory.AdapterWithAlgorithm(memory.LRU), memory.AdapterWithCapacity(10000))
		if err != nil {
			tb.Fatal(err)
		}
		client, err := httpcache.NewClient(httpcache.ClientWithAdapter(adapter), httpcache.ClientWithTTL(time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		e := echo.New()
		e.GET("/page", handler, client.Middleware())
		return e
	}},
}

// serve answers one GET /page on a new recorder, as echo's own middleware
// benchmarks do.
func serve(e *echo.Echo, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestSetups checks that every setup answers with the page, before and
// after it is cached, so that the benchmarks measure what they say.
func TestSetups(t *testing.T) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			e := s.new(t)
			req := httptest.NewRequest(http.MethodGet, "/page", nil)
			for i := range 3 {
				rec := serve(e, req)
				if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), body) {
					t.Fatalf("request %d: status %d, %d bytes; want 200 and the 2 KiB page", i, rec.Code, rec.Body.Len())
				}
			}
		})
	}
}

// BenchmarkHit serves a cached 2 KiB page from each cache's memory store
// ("static" is the handler alone, the baseline).
func BenchmarkHit(b *testing.B) {
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			e := s.new(b)
			req := httptest.NewRequest(http.MethodGet, "/page", nil)
			serve(e, req) // fills the cache
			b.ReportAllocs()
			var rec *httptest.ResponseRecorder
			for b.Loop() {
				rec = serve(e, req)
			}
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), body) {
				b.Fatalf("status %d, %d bytes; want 200 and the 2 KiB page", rec.Code, rec.Body.Len())
			}
		})
	}
}

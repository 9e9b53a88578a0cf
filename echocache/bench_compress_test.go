package echocache

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// BenchmarkHitRedisCompressed serves a 64 KiB HTML page (htmlPage) from
// redis, stored compressed (the default) and plain (CompressMinSize -1),
// side by side; with -count they alternate. Each hit of the compressed
// page reads about a third of the bytes from redis and decodes them.
func BenchmarkHitRedisCompressed(b *testing.B) {
	body := htmlPage(64 << 10)
	for _, bb := range []struct {
		name string
		min  int
	}{{"compressed", 0}, {"plain", -1}} {
		b.Run(bb.name, func(b *testing.B) {
			store, err := stores.Open(context.Background(), servertest.Redis(b)+"?prefix=bench-hit-64k-"+bb.name+":")
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			defer store.Clear(context.Background())
			c, err := NewWithConfig(store, Config{CompressMinSize: bb.min})
			if err != nil {
				b.Fatal(err)
			}
			e := echo.New()
			e.GET("/page", c.Cached(time.Hour)(func(c echo.Context) error {
				return c.HTMLBlob(http.StatusOK, body)
			}))
			runRouteBenchBody(b, e, c, "/page", body)
			if got := c.Stats().Hits; got < uint64(b.N) {
				b.Fatalf("Stats().Hits = %d; want at least %d", got, b.N)
			}
		})
	}
}

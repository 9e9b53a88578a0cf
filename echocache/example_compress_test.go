package echocache_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// Entries of 4 KiB and more are stored compressed in a networked store by
// default; Config.CompressMinSize moves the threshold, or turns
// compression off with -1. (Compiled, not run: it needs a redis server.)
func ExampleConfig_compression() {
	store, err := stores.Open(context.Background(), "redis://127.0.0.1:6379/0?prefix=myapp:")
	if err != nil {
		log.Fatal(err)
	}
	cache, err := echocache.NewWithConfig(store, echocache.Config{
		CompressMinSize: 16 << 10, // only entries of 16 KiB and more; -1: never
	})
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.GET("/catalogue", func(c echo.Context) error {
		return c.HTML(http.StatusOK, "<table>...</table>")
	}, cache.Cached(5*time.Minute))
}

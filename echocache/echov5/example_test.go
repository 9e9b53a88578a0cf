package echov5_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/echov5"
	"github.com/echocache/echocache/stores"
)

// Flask-Cache's @cache.cached(timeout=300) on an Echo v5 view; the page
// is dropped with the Cache's DeletePage, as under Echo v4.
func ExampleCached() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	renders := 0
	e.GET("/", func(c *echo.Context) error {
		renders++
		return c.String(http.StatusOK, fmt.Sprintf("rendered %d time(s)", renders))
	}, echov5.Cached(cache, 5*time.Minute))

	for i := range 3 {
		if i == 2 {
			_ = cache.DeletePage(context.Background(), "/")
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Println(rec.Header().Get("X-Cache"), rec.Body.String())
	}
	// Output:
	// MISS rendered 1 time(s)
	// HIT rendered 1 time(s)
	// MISS rendered 2 time(s)
}

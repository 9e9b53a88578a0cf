package readme_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// The README's "in your own app": open a store by URL, make a Cache, cache a
// route.
func Example_ownApp() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "memory://?max_bytes=64MiB")
	if err != nil {
		panic(err) // a bad URL names the problem
	}
	defer store.Close()
	cache := echocache.New(store)

	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		return c.String(http.StatusOK, time.Now().Format(time.RFC3339Nano))
	}, cache.Cached(5*time.Minute))

	for range 2 {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Println(rec.Code, rec.Header().Get("X-Cache"))
	}
	// Output:
	// 200 MISS
	// 200 HIT
}

// The README's route options and invalidation: a key prefix, Flask's
// unless, tags, and deleting a page from code.
func Example_routeOptions() {
	ctx := context.Background()
	store, _ := stores.Open(ctx, "memory://")
	cache := echocache.New(store)
	e := echo.New()
	calls := 0

	e.GET("/news", func(c echo.Context) error {
		echocache.Tag(c, "news") // InvalidateTag("news") drops this page
		calls++
		return c.String(http.StatusOK, fmt.Sprint("news, rendered ", calls, " time(s)"))
	}, cache.CachedWithConfig(echocache.RouteConfig{
		TTL:       10 * time.Minute,
		KeyPrefix: "view/%s", // %s is the request path
		Skipper: func(c echo.Context) bool {
			return c.QueryParam("preview") != "" // never cache previews
		},
	}))

	get := func(target string) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("%s, X-Cache %q\n", rec.Body.String(), rec.Header().Get("X-Cache"))
	}
	get("/news")
	get("/news")
	get("/news?preview=1")

	if err := cache.InvalidateTag(ctx, "news"); err != nil {
		fmt.Println(err)
	}
	get("/news")

	if err := cache.DeletePage(ctx, "/news"); err != nil {
		fmt.Println(err)
	}
	get("/news")
	// Output:
	// news, rendered 1 time(s), X-Cache "MISS"
	// news, rendered 1 time(s), X-Cache "HIT"
	// news, rendered 2 time(s), X-Cache ""
	// news, rendered 3 time(s), X-Cache "MISS"
	// news, rendered 4 time(s), X-Cache "MISS"
}

// The README's cache with a default TTL and a codec, Flask-Cache's
// CACHE_DEFAULT_TIMEOUT.
func Example_config() {
	store, _ := stores.Open(context.Background(), "memory://")
	cache, err := echocache.NewWithConfig(store, echocache.Config{
		DefaultTTL: 10 * time.Minute,      // CACHE_DEFAULT_TIMEOUT
		Codec:      echocache.JSONCodec{}, // default: echocache.CBORCodec{}
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(cache.DefaultTTL())
	// Output: 10m0s
}

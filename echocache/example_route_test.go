package echocache_test

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

func routeServe(e *echo.Echo, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// Flask-Cache's @cache.cached(timeout=300) on a view.
func ExampleCache_Cached() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	renders := 0
	e.GET("/", func(c echo.Context) error {
		renders++
		return c.String(http.StatusOK, fmt.Sprintf("rendered %d time(s)", renders))
	}, cache.Cached(5*time.Minute))

	for range 3 {
		rec := routeServe(e, "/")
		fmt.Println(rec.Header().Get("X-Cache"), rec.Body.String())
	}
	// Output:
	// MISS rendered 1 time(s)
	// HIT rendered 1 time(s)
	// HIT rendered 1 time(s)
}

// HEAD from the cache: Echo routes each method apart, so a route that
// should answer HEAD is registered for both; a GET-only route answers HEAD
// with Echo's 405, cached or not.
func ExampleCache_Cached_head() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	page := func(c echo.Context) error { return c.String(http.StatusOK, "Beautiful is better than ugly.") }
	e.Match([]string{http.MethodGet, http.MethodHead}, "/", page, cache.Cached(time.Minute))
	e.GET("/get-only", page, cache.Cached(time.Minute))

	for _, r := range [][2]string{
		{http.MethodGet, "/"}, {http.MethodHead, "/"},
		{http.MethodGet, "/get-only"}, {http.MethodHead, "/get-only"},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(r[0], r[1], nil))
		fmt.Printf("%s %s: %d X-Cache=%q Content-Length=%q\n", r[0], r[1], rec.Code,
			rec.Header().Get("X-Cache"), rec.Header().Get(echo.HeaderContentLength))
	}
	// Output:
	// GET /: 200 X-Cache="MISS" Content-Length=""
	// HEAD /: 200 X-Cache="HIT" Content-Length="30"
	// GET /get-only: 200 X-Cache="MISS" Content-Length=""
	// HEAD /get-only: 405 X-Cache="" Content-Length=""
}

// A view defined elsewhere, wrapped when it is registered (the
// walkthrough's modular views), and a whole group (a blueprint) on a cache
// that gets its store later (init_app).
func ExampleCache_Cached_modularViews() {
	cache := echocache.New(nil) // package cache: created before the app
	zen := func(c echo.Context) error { return c.String(http.StatusOK, "Beautiful is better than ugly.") }

	e := echo.New()
	e.GET("/", cache.Cached(10*time.Second)(zen))
	g := e.Group("/zen", cache.Cached(20*time.Second))
	g.GET("", zen)

	fmt.Println("before Init:", routeServe(e, "/").Header().Get("X-Cache") == "")
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache.Init(store) // main: cache.init_app(app)
	for _, target := range []string{"/", "/", "/zen", "/zen"} {
		fmt.Println(target, routeServe(e, target).Header().Get("X-Cache"))
	}
	// Output:
	// before Init: true
	// / MISS
	// / HIT
	// /zen MISS
	// /zen HIT
}

// Vary on a request header and serve a stale page while one background
// request refreshes it.
func ExampleCache_CachedWithConfig() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	e.GET("/hello", func(c echo.Context) error {
		if c.Request().Header.Get("Accept-Language") == "fr" {
			return c.String(http.StatusOK, "bonjour")
		}
		return c.String(http.StatusOK, "hello")
	}, cache.CachedWithConfig(echocache.RouteConfig{
		TTL:                  time.Minute,
		VaryHeaders:          []string{"Accept-Language"},
		StaleWhileRevalidate: 10 * time.Minute,
		StaleIfError:         time.Hour,
	}))

	for _, lang := range []string{"en", "fr", "en", "fr"} {
		rec := routeServe(e, "/hello", "Accept-Language", lang)
		fmt.Println(lang, rec.Header().Get("X-Cache"), rec.Body.String())
	}
	// Output:
	// en MISS hello
	// fr MISS bonjour
	// en HIT hello
	// fr HIT bonjour
}

// A handler chooses the TTL of its own response (Flask-Caching's
// CachedResponse), or not to cache it at all.
func ExampleSetTTL() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	e.GET("/report", func(c echo.Context) error {
		if c.QueryParam("draft") != "" {
			echocache.SetTTL(c, 0) // never cache drafts
		} else {
			echocache.SetTTL(c, time.Hour)
		}
		return c.String(http.StatusOK, "report")
	}, cache.Cached(time.Minute))

	for _, target := range []string{"/report", "/report", "/report?draft=1", "/report?draft=1"} {
		fmt.Println(target, routeServe(e, target).Header().Get("X-Cache"))
	}
	// Output:
	// /report MISS
	// /report HIT
	// /report?draft=1 MISS
	// /report?draft=1 MISS
}

// Delete one page from code, Flask-Caching's delete_cached: every host and
// variant of it goes.
func ExampleCache_DeletePage() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	e.GET("/article", func(c echo.Context) error {
		return c.String(http.StatusOK, "article "+c.QueryParam("id"))
	}, cache.Cached(time.Hour))

	routeServe(e, "/article?id=1")
	routeServe(e, "/article?id=2")
	_ = cache.DeletePage(context.Background(), "/article?id=1&utm_source=newsletter")
	fmt.Println(routeServe(e, "/article?id=1").Header().Get("X-Cache"))
	fmt.Println(routeServe(e, "/article?id=2").Header().Get("X-Cache"))
	// Output:
	// MISS
	// HIT
}

// Tag pages in the handler and drop them all with one store write, on
// every backend.
func ExampleCache_InvalidateTag() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	e := echo.New()
	e.GET("/products/:id", func(c echo.Context) error {
		echocache.Tag(c, "products", "product-"+c.Param("id"))
		return c.String(http.StatusOK, "product "+c.Param("id"))
	}, cache.Cached(time.Hour))

	routeServe(e, "/products/1")
	routeServe(e, "/products/2")
	_ = cache.InvalidateTag(context.Background(), "product-1")
	fmt.Println(routeServe(e, "/products/1").Header().Get("X-Cache"))
	fmt.Println(routeServe(e, "/products/2").Header().Get("X-Cache"))
	_ = cache.InvalidateTag(context.Background(), "products")
	fmt.Println(routeServe(e, "/products/2").Header().Get("X-Cache"))
	// Output:
	// MISS
	// HIT
	// MISS
}

// ToMiddleware returns configuration errors instead of panicking.
func ExampleRouteConfig_ToMiddleware() {
	cfg := echocache.DefaultRouteConfig
	cfg.Cache = echocache.New(nil)
	cfg.AllowedStatuses = []int{200, 1000}
	_, err := cfg.ToMiddleware()
	fmt.Println(err)
	// Output:
	// echocache: RouteConfig.AllowedStatuses: bad status 1000
}

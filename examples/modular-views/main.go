// Command modular-views is the walkthrough's "Caching modular views": the
// handlers live in package views, which knows nothing of caching, and main
// wraps the one it wants cached (10 seconds) when it registers the route.
//
//	go run ./examples/modular-views
package main

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/examples/modular-views/views"
	"github.com/echocache/echocache/stores"
)

// cachedFor is how long the zen view is cached: 10 seconds, as in the
// walkthrough. Tests shorten it.
var cachedFor = 10 * time.Second

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	// Explicitly wrap the view, the way a decorator would.
	cachedZen := cache.Cached(cachedFor)(views.Zen)

	e := echo.New()
	e.GET("/", cachedZen) // explicitly register the cached view
	return e
}

func main() {
	demo.Main(newServer)
}

// Command cached-app is the walkthrough's "Enabling Flask-Cache for views":
// GET / returns the current time, cached for 5 minutes by the route
// middleware, so refreshing the page shows the same time until the entry
// expires. The response header X-Cache says HIT or MISS.
//
//	go run ./examples/cached-app
//	CACHE_URL=redis://127.0.0.1:6379/0 go run ./examples/cached-app
package main

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/stores"
)

// cachedFor is how long GET / is cached: 5 minutes, as in the walkthrough.
// Tests shorten it.
var cachedFor = 5 * time.Minute

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		return c.String(http.StatusOK, demo.Now())
	}, cache.Cached(cachedFor)) // cache this route for 5 minutes
	return e
}

func main() {
	demo.Main(newServer)
}

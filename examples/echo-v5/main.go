// Command echo-v5 is the walkthrough's "Enabling Flask-Cache for views" on
// Echo v5 (github.com/labstack/echo/v5): GET / returns the current time,
// cached for 5 minutes by echocache/echov5's route middleware, so
// refreshing the page shows the same time until the entry expires. The
// response header X-Cache says HIT or MISS. It is examples/cached-app with
// Echo v5's *echo.Context.
//
//	go run ./examples/echo-v5
//	CACHE_URL=redis://127.0.0.1:6379/0 go run ./examples/echo-v5
package main

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/echov5"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/stores"
)

// cachedFor is how long GET / is cached: 5 minutes, as in the walkthrough.
// Tests shorten it.
var cachedFor = 5 * time.Minute

func newServer(store stores.Store) http.Handler {
	cache := echocache.New(store)

	e := echo.New()
	e.GET("/", func(c *echo.Context) error {
		return c.String(http.StatusOK, time.Now().Format(time.RFC3339Nano))
	}, echov5.Cached(cache, cachedFor)) // cache this route for 5 minutes
	return e
}

func main() {
	demo.MainHandler(newServer)
}

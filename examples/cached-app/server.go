package main

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// cachedFor is how long GET / is cached: 5 minutes, as in the walkthrough.
// Tests shorten it.
var cachedFor = 5 * time.Minute

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		return c.String(http.StatusOK, time.Now().Format(time.RFC3339Nano))
	}, cache.Cached(cachedFor)) // cache this route for 5 minutes
	return e
}

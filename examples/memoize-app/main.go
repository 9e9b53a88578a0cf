// Command memoize-app is the walkthrough's memoize example: GET /:name
// returns "name - time" from a function memoized for 5 seconds, with one
// cache entry per distinct name.
//
//	go run ./examples/memoize-app
//	curl http://127.0.0.1:5000/gopher
package main

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/stores"
)

// cachedFor is how long each name's result is memoized: 5 seconds, as in
// the walkthrough. Tests shorten it.
var cachedFor = 5 * time.Second

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	getCurrentTimeAndName := echocache.Memoize(cache, "get_current_time_and_name", cachedFor,
		func(_ context.Context, name string) (string, error) {
			return name + " - " + time.Now().Format(time.RFC3339Nano), nil
		})

	e := echo.New()
	e.GET("/:name", func(c echo.Context) error {
		s, err := getCurrentTimeAndName.Get(c.Request().Context(), c.Param("name"))
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, s)
	})
	return e
}

func main() {
	demo.Main(newServer)
}

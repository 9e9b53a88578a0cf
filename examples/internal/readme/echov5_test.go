package readme_test

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/echov5"
	"github.com/echocache/echocache/stores"
)

// The README's cached view on Echo v5, with its imports.
func newEchoV5Server(store stores.Store) http.Handler {
	cache := echocache.New(store)

	e := echo.New()
	e.GET("/", func(c *echo.Context) error {
		return c.String(http.StatusOK, time.Now().Format(time.RFC3339Nano))
	}, echov5.Cached(cache, 5*time.Minute)) // cache this route for 5 minutes
	return e
}

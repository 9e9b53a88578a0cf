// Package zen is the cached-blueprint-app's route group (the walkthrough's
// zen blueprint). It caches its page through the app's shared cache, which
// main initialises after this package has set up its middleware.
package zen

import (
	"fmt"
	"html"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/cached-blueprint-app/cache"
	"github.com/echocache/echocache/examples/proverbs"
)

// CachedFor is how long the zen page is cached: 20 seconds, as in the
// walkthrough. Tests shorten it before calling Register.
var CachedFor = 20 * time.Second

// Register adds the zen routes to g.
func Register(g *echo.Group) {
	g.GET("/", view, cache.Cache.Cached(CachedFor))
}

func view(c echo.Context) error {
	return c.HTML(http.StatusOK, fmt.Sprintf(`
<h1>Cached for 20 seconds!</h1>
<ul>
    <li>%s</li>
    <li>%s</li>
</ul>
`, html.EscapeString(time.Now().Format(time.RFC3339Nano)), html.EscapeString(proverbs.Random())))
}

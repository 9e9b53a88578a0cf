// Command method-view is the walkthrough's "Caching MethodView": the
// handlers are methods of a struct, one per HTTP method. GET / caches one
// method (30 seconds); under /view the whole view, every route of the
// struct, is cached (50 seconds). POST is never cached, even there: only
// GET responses are stored.
//
//	go run ./examples/method-view
//	curl http://127.0.0.1:5000/ http://127.0.0.1:5000/view
//	curl -X POST http://127.0.0.1:5000/view
package main

import (
	"fmt"
	"html"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/examples/proverbs"
	"github.com/echocache/echocache/stores"
)

// How long the pages are cached, as in the walkthrough. Tests shorten them.
var (
	methodCachedFor = 30 * time.Second // one method
	viewCachedFor   = 50 * time.Second // the whole view
)

// ZenView maps HTTP methods to its methods, like Flask's MethodView.
type ZenView struct{}

// Get shows the current time and a random Go proverb.
func (ZenView) Get(c echo.Context) error {
	return c.HTML(http.StatusOK, fmt.Sprintf(`
<h1>Zen view</h1>
<ul>
    <li>%s</li>
    <li>%s</li>
</ul>
`, html.EscapeString(time.Now().Format(time.RFC3339Nano)), html.EscapeString(proverbs.Random())))
}

// Post answers with the time it ran.
func (ZenView) Post(c echo.Context) error {
	return c.String(http.StatusOK, "posted at "+time.Now().Format(time.RFC3339Nano))
}

// Register adds every route of the view to g, at the group's own path.
func (v ZenView) Register(g *echo.Group) {
	g.GET("", v.Get)
	g.POST("", v.Post)
}

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)
	zen := ZenView{}

	e := echo.New()

	// Cache one method: GET / for 30 seconds. POST / is not cached.
	e.GET("/", zen.Get, cache.Cached(methodCachedFor))
	e.POST("/", zen.Post)

	// Cache the whole view: every route of ZenView under /view, for 50
	// seconds.
	zen.Register(e.Group("/view", cache.Cached(viewCachedFor)))
	return e
}

func main() {
	demo.Main(newServer)
}

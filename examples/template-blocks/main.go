// Command template-blocks is the walkthrough's "Caching template blocks":
// a pongo2 template caches the block around a random Go proverb for 30
// seconds with {% cache 30 %}, while the time outside the block is fresh on
// every request. GET /percent renders the same page from a template that
// spells the tag <% cache 30 %>. The templates are embedded in the binary.
//
//	go run ./examples/template-blocks
//	curl http://127.0.0.1:5000/ http://127.0.0.1:5000/percent
package main

import (
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/examples/proverbs"
	"github.com/echocache/echocache/pongotag"
	"github.com/echocache/echocache/stores"
)

//go:embed templates/*.html
var files embed.FS

// templates holds the pages' templates. Tests swap it to shorten the TTLs.
var templates fs.FS = files

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	e := echo.New()
	e.Renderer = pongotag.NewRenderer(templates, cache)

	// The functions the templates call.
	data := echo.Map{
		"get_random_quote": proverbs.Random,
		"now":              func() string { return time.Now().Format(time.RFC3339Nano) },
	}
	e.GET("/", func(c echo.Context) error {
		return c.Render(http.StatusOK, "templates/zen.html", data)
	})
	e.GET("/percent", func(c echo.Context) error {
		return c.Render(http.StatusOK, "templates/zen-percent.html", data)
	})
	return e
}

func main() {
	demo.Main(newServer)
}

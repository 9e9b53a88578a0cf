// Command cached-function-app is the walkthrough's "Caching regular
// functions": GET / shows the current time from a function cached for 10
// seconds under the key "current_time", next to a random Go proverb that is
// not cached. With -swap it runs the walkthrough's switched variant: the
// proverb is cached under "zen_quote" and the time is not.
//
//	go run ./examples/cached-function-app
//	go run ./examples/cached-function-app -swap
package main

import (
	"context"
	"flag"
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

// cachedFor is how long the cached function keeps its result: 10 seconds,
// as in the walkthrough. Tests shorten it.
var cachedFor = 10 * time.Second

const page = `
<ul>
    <li><strong>It is cached:</strong> %s</li>
    <li><strong>It is not cached:</strong> %s</li>
</ul>
`

func newServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	// getCurrentTime is cached for 10 seconds under the key "current_time".
	getCurrentTime := echocache.Function(cache, "current_time", cachedFor,
		func(context.Context) (string, error) {
			return time.Now().Format(time.RFC3339Nano), nil
		})

	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		now, err := getCurrentTime.Get(c.Request().Context())
		if err != nil {
			return err
		}
		return c.HTML(http.StatusOK, fmt.Sprintf(page,
			html.EscapeString(now),               // cached
			html.EscapeString(proverbs.Random()), // not cached
		))
	})
	return e
}

// newSwappedServer is the switched variant: the proverb is cached for 10
// seconds under the key "zen_quote", the time is not.
func newSwappedServer(store stores.Store) *echo.Echo {
	cache := echocache.New(store)

	randomProverb := echocache.Function(cache, "zen_quote", cachedFor,
		func(context.Context) (string, error) {
			return proverbs.Random(), nil
		})

	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		proverb, err := randomProverb.Get(c.Request().Context())
		if err != nil {
			return err
		}
		return c.HTML(http.StatusOK, fmt.Sprintf(page,
			html.EscapeString(proverb),                             // cached
			html.EscapeString(time.Now().Format(time.RFC3339Nano)), // not cached
		))
	})
	return e
}

func main() {
	swap := flag.Bool("swap", false, "cache the proverb instead of the time")
	flag.Parse()
	if *swap {
		demo.Main(newSwappedServer)
	} else {
		demo.Main(newServer)
	}
}

// Package views holds the handlers of the modular-views example. It knows
// nothing of caching: the main package decides which views are cached when
// it registers their routes, as the walkthrough's app.py does with
// app.cache.cached(timeout=10)(zen_view).
package views

import (
	"fmt"
	"html"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/proverbs"
)

// Zen shows the current time and a random Go proverb.
func Zen(c echo.Context) error {
	return c.HTML(http.StatusOK, fmt.Sprintf(`
<h1>Cached for 10 seconds!</h1>
<ul>
    <li>%s</li>
    <li>%s</li>
</ul>
`, html.EscapeString(time.Now().Format(time.RFC3339Nano)), html.EscapeString(proverbs.Random())))
}

package echov5_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing/fstest"

	"github.com/labstack/echo/v5"

	"github.com/echocache/echocache/echocache"
	pongov5 "github.com/echocache/echocache/pongotag/echov5"
	"github.com/echocache/echocache/stores"
)

// The renderer on Echo v5: the quote block renders once and is served
// from the cache for 30 seconds, the walkthrough's cached template block.
func ExampleNewRenderer() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	templates := fstest.MapFS{"zen.html": {Data: []byte(
		"{% cache 30 %}<strong>{{ get_random_quote() }}</strong>{% endcache %} on {{ echo.Request().URL.Path }}\n")}}

	quotes := []string{"Beautiful is better than ugly.", "Explicit is better than implicit."}
	picked := 0
	e := echo.New()
	e.Renderer = pongov5.NewRenderer(templates, cache)
	e.GET("/*", func(c *echo.Context) error {
		return c.Render(http.StatusOK, "zen.html", map[string]any{
			"get_random_quote": func() string { picked++; return quotes[picked%2] },
		})
	})
	for _, path := range []string{"/a", "/b"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(strings.TrimSpace(rec.Body.String()))
	}
	fmt.Println("quotes picked:", picked)
	// Output:
	// <strong>Explicit is better than implicit.</strong> on /a
	// <strong>Explicit is better than implicit.</strong> on /b
	// quotes picked: 1
}

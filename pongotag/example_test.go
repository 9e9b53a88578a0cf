package pongotag_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing/fstest"

	"github.com/flosch/pongo2/v6"
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/pongotag"
	"github.com/echocache/echocache/stores"
)

// The walkthrough's zen.html, cached for 30 seconds, rendered by Echo. The
// templates could as well come from os.DirFS("templates") or an embed.FS.
func ExampleRenderer() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	templates := fstest.MapFS{"zen.html": {Data: []byte(
		"<% cache 30 %>\n<h3> Random Zen of Python </h3>\n<strong>{{ get_random_quote() }}</strong>\n<% endcache %>\n")}}

	quotes := []string{"Beautiful is better than ugly.", "Explicit is better than implicit."}
	picked := 0
	e := echo.New()
	e.Renderer = pongotag.NewRenderer(templates, cache)
	e.GET("/", func(c echo.Context) error {
		return c.Render(http.StatusOK, "zen.html", echo.Map{
			"get_random_quote": func() string { picked++; return quotes[picked%2] },
		})
	})
	for range 2 {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Println(strings.TrimSpace(rec.Body.String()))
	}
	fmt.Println("quotes picked:", picked)
	// Output:
	// <h3> Random Zen of Python </h3>
	// <strong>Explicit is better than implicit.</strong>
	// <h3> Random Zen of Python </h3>
	// <strong>Explicit is better than implicit.</strong>
	// quotes picked: 1
}

// A named block is deleted by name and vary-on values, like
// Flask-Caching's make_template_fragment_key.
func ExampleDeleteFragment() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	pongotag.SetDefaultCache(cache)
	defer pongotag.SetDefaultCache(nil)

	tpl := pongo2.Must(pongo2.FromString(`{% cache 300 "sidebar" user_id %}<aside>{{ unread }} unread</aside>{% endcache %}`))
	show := func(unread int) {
		out, _ := tpl.Execute(pongo2.Context{"user_id": 42, "unread": unread})
		fmt.Println(out)
	}
	show(3)
	show(4) // cached
	_ = pongotag.DeleteFragment(context.Background(), cache, "sidebar", 42)
	show(5)

	key, _ := pongotag.FragmentKey("sidebar", 42)
	fmt.Println(key[:len("f:n:sidebar:")])
	// Output:
	// <aside>3 unread</aside>
	// <aside>3 unread</aside>
	// <aside>5 unread</aside>
	// f:n:sidebar:
}

// Rewrite turns only the cache tags into pongo2's spelling, byte for byte.
func ExampleRewrite() {
	fmt.Println(pongotag.Rewrite(`<script><% if (x) { %>100%><% } %></script><% cache 30 %>x<% endcache %>`))
	// Output:
	// <script><% if (x) { %>100%><% } %></script>{% cache 30 %}x{% endcache %}
}

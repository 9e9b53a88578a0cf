package pongotag_test

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flosch/pongo2/v6"
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/syncbuf"
	"github.com/echocache/echocache/pongotag"
)

func newEchoContext(ctx context.Context) echo.Context {
	req := httptest.NewRequest(http.MethodGet, "/zen", nil).WithContext(ctx)
	return echo.New().NewContext(req, httptest.NewRecorder())
}

// zenApp is the walkthrough's blueprint app: GET / renders zen.html with a
// function returning a new quote on every call.
func zenApp(t *testing.T, r echo.Renderer) (e *echo.Echo, quotes *atomic.Int64) {
	t.Helper()
	e = echo.New()
	e.Renderer = r
	quotes = new(atomic.Int64)
	e.GET("/", func(c echo.Context) error {
		return c.Render(http.StatusOK, "zen.html", echo.Map{
			"get_random_quote": func() string {
				return []string{"Beautiful is better than ugly.", "Explicit is better than implicit.", "Simple is better than complex."}[quotes.Add(1)%3]
			},
		})
	})
	return e, quotes
}

func get(t *testing.T, e *echo.Echo, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// The walkthrough's template example, in both spellings, through Echo.
func TestWalkthroughZenTemplate(t *testing.T) {
	for name, src := range map[string]string{
		"braces":  "{% cache 30 %}\n<h3> Random Zen of Python </h3>\n<strong>{{get_random_quote()}}</strong>\n{% endcache %}\n",
		"percent": "<% cache 30 %>\n<h3> Random Zen of Python </h3>\n<strong>{{get_random_quote()}}</strong>\n<% endcache %>\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, spy, _ := newCache(t)
			e, quotes := zenApp(t, pongotag.NewRenderer(fstest.MapFS{"zen.html": file(src)}, c))
			first := get(t, e, "/")
			if !strings.Contains(first, "<h3> Random Zen of Python </h3>\n<strong>Explicit is better than implicit.</strong>") {
				t.Fatalf("first page = %q", first)
			}
			for range 3 {
				if got := get(t, e, "/"); got != first {
					t.Errorf("page within 30s = %q; want the cached %q", got, first)
				}
			}
			if got := quotes.Load(); got != 1 {
				t.Errorf("quote picked %d times; want 1", got)
			}
			if got := spy.onlyTTL(t); got.Seconds() != 30 {
				t.Errorf("TTL = %v; want 30s", got)
			}
		})
	}
}

// countingFS counts the files opened.
type countingFS struct {
	fs.FS
	opens atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	c.opens.Add(1)
	return c.FS.Open(name)
}

func TestRendererParsesOnce(t *testing.T) {
	files := &countingFS{FS: fstest.MapFS{
		"base.html":       file(`<title>{% block title %}{% endblock %}</title>{% include "parts/nav.html" %}`),
		"pages/home.html": file(`{% extends "base.html" %}{% block title %}Home{% endblock %}`),
		"parts/nav.html":  file(`<nav/>`),
	}}
	r := pongotag.NewRenderer(files, nil)
	e := echo.New()
	for range 3 {
		var sb strings.Builder
		if err := r.Render(&sb, "pages/home.html", nil, e.NewContext(httptest.NewRequest("GET", "/", nil), httptest.NewRecorder())); err != nil {
			t.Fatal(err)
		}
		if got := sb.String(); got != "<title>Home</title><nav/>" {
			t.Errorf("page = %q", got)
		}
	}
	if got := files.opens.Load(); got != 3 {
		t.Errorf("files opened = %d; want 3 (each once)", got)
	}
	// "/pages/home.html" and "pages/../pages/home.html" are the same template.
	a, _ := r.Template("pages/home.html")
	b, _ := r.Template("/pages/../pages/home.html")
	if a != b {
		t.Errorf("one template parsed twice under two spellings of its name")
	}
}

func TestRendererDirAndDevelopmentReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("base.html", `[{% block b %}{% endblock %}]`)
	write("page.html", `{% extends "base.html" %}{% block b %}<% cache 30 %>v1 {{ next() }}<% endcache %>{% endblock %}`)

	c, _, _ := newCache(t)
	var n counter
	renderWith := func(r *pongotag.Renderer) string {
		t.Helper()
		var sb strings.Builder
		if err := r.Render(&sb, "page.html", pongo2.Context{"next": n.next}, nil); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	dev, err := pongotag.NewRendererWithConfig(pongotag.RendererConfig{Dir: dir, Cache: c, Development: true})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := pongotag.NewRendererWithConfig(pongotag.RendererConfig{Dir: dir, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if got := renderWith(dev) + renderWith(prod); got != "[v1 1][v1 1]" {
		t.Fatalf("first renders = %q; want [v1 1] twice", got)
	}

	// Editing the block: development mode re-parses (a new key: rendered
	// afresh); without it the parsed template is reused.
	write("page.html", `{% extends "base.html" %}{% block b %}<% cache 30 %>v2 {{ next() }}<% endcache %>{% endblock %}`)
	if got := renderWith(dev); got != "[v2 2]" {
		t.Errorf("development render after edit = %q; want [v2 2]", got)
	}
	if got := renderWith(prod); got != "[v1 1]" {
		t.Errorf("production render after edit = %q; want [v1 1]", got)
	}
	// Editing the parent is seen too.
	write("base.html", `<{% block b %}{% endblock %}>`)
	if got := renderWith(dev); got != "<v2 2>" {
		t.Errorf("development render after editing the parent = %q; want <v2 2>", got)
	}
	// A file that disappears is an error, not a stale page.
	os.Remove(filepath.Join(dir, "base.html"))
	if err := dev.Render(&strings.Builder{}, "page.html", nil, nil); err == nil {
		t.Errorf("render after removing the parent: no error")
	}
}

func TestRendererConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, cfg := range []pongotag.RendererConfig{
		{},
		{Dir: filepath.Join(t.TempDir(), "missing")},
		{Dir: file},
	} {
		if _, err := pongotag.NewRendererWithConfig(cfg); err == nil || !strings.HasPrefix(err.Error(), "pongotag: ") {
			t.Errorf("NewRendererWithConfig(%+v) error = %v; want a pongotag error", cfg, err)
		}
	}
}

func TestRendererContextVariables(t *testing.T) {
	c, _, _ := newCache(t)
	r, err := pongotag.NewRendererWithConfig(pongotag.RendererConfig{
		FS: fstest.MapFS{
			"vars.html": file(`{{ echo.Path() }} {{ echo.QueryParam("q") }} {{ echocache.Stats().Stores }} {{ site }} {{ x }}`),
		},
		Cache:   c,
		Globals: pongo2.Context{"site": "zen"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.Renderer = r
	e.GET("/v", func(ec echo.Context) error { return ec.Render(200, "vars.html", map[string]int{"x": 7}) })
	if got := get(t, e, "/v?q=hi"); got != "/v hi 0 zen 7" {
		t.Errorf("page = %q; want %q", got, "/v hi 0 zen 7")
	}
}

func TestRendererData(t *testing.T) {
	r := pongotag.NewRenderer(fstest.MapFS{"d.html": file(`{{ a }}`)}, nil)
	for _, data := range []any{pongo2.Context{"a": 1}, map[string]any{"a": 1}, echo.Map{"a": 1}, map[string]int{"a": 1}} {
		var sb strings.Builder
		if err := r.Render(&sb, "d.html", data, nil); err != nil || sb.String() != "1" {
			t.Errorf("Render(%T) = %q, %v; want 1", data, sb.String(), err)
		}
	}
	var sb strings.Builder
	if err := r.Render(&sb, "d.html", nil, nil); err != nil || sb.String() != "" {
		t.Errorf("Render(nil) = %q, %v", sb.String(), err)
	}
	if err := r.Render(&sb, "d.html", []int{1}, nil); err == nil || !strings.Contains(err.Error(), "map with string keys") {
		t.Errorf("Render([]int) error = %v", err)
	}
	if err := r.Render(&sb, "missing.html", nil, nil); err == nil || !strings.Contains(err.Error(), "missing.html") {
		t.Errorf("Render(missing) error = %v", err)
	}
}

func TestRendererParseErrorsNameTemplateAndLine(t *testing.T) {
	r := pongotag.NewRenderer(fstest.MapFS{
		"base.html":  file("<html>\n<body>\n  {% cache 30 %}\n  never closed\n</body>"),
		"child.html": file(`{% extends "base.html" %}`),
	}, nil)
	for _, name := range []string{"base.html", "child.html"} {
		err := r.Render(&strings.Builder{}, name, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "base.html | Line 3 Col 6") || !strings.Contains(err.Error(), "expected {% endcache %}") {
			t.Errorf("Render(%s) error = %v; want base.html line 3 and the missing endcache", name, err)
		}
	}
}

// With Echo's and echocache's default settings, store warnings of template
// blocks reach the app's log (slog.Default()), and a request that did not
// go through echocache.WithCache is not reported as a forgotten WithCache:
// the renderer has a cache of its own.
func TestRendererLogsWithDefaults(t *testing.T) {
	var logged syncbuf.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	core.ResetWarnNoCache()
	t.Cleanup(core.ResetWarnNoCache)

	spy := newSpy(newMemory(t))
	spy.remote = true
	spy.failGet.Store(true)
	c, _ := echocache.NewWithConfig(spy, echocache.Config{BreakerThreshold: -1})
	e, _ := zenApp(t, pongotag.NewRenderer(fstest.MapFS{"zen.html": file(`{% cache 30 %}{{ get_random_quote() }}{% endcache %}`)}, c))
	get(t, e, "/")
	if got := logged.String(); !strings.Contains(got, errBroken.Error()) || strings.Contains(got, "WithCache") {
		t.Errorf("slog.Default() got %q; want the store error and nothing about WithCache", got)
	}
}

// A request that went through echocache.WithCache renders its blocks with
// that cache; render data can name another.
func TestRendererUsesRequestCache(t *testing.T) {
	configured, confSpy, _ := newCache(t)
	reqCache, reqSpy, _ := newCache(t)
	dataCache, dataSpy, _ := newCache(t)
	e := echo.New()
	e.Renderer = pongotag.NewRenderer(fstest.MapFS{"b.html": file(`{% cache 30 %}b{% endcache %}`)}, configured)
	e.GET("/plain", func(c echo.Context) error { return c.Render(200, "b.html", nil) })
	e.GET("/req", func(c echo.Context) error { return c.Render(200, "b.html", nil) }, echocache.WithCache(reqCache))
	e.GET("/data", func(c echo.Context) error {
		return c.Render(200, "b.html", echo.Map{pongotag.CacheVar: dataCache})
	}, echocache.WithCache(reqCache))
	for _, step := range []struct {
		path string
		want [3]int64
	}{
		{"/plain", [3]int64{1, 0, 0}},
		{"/req", [3]int64{1, 1, 0}},
		{"/data", [3]int64{1, 1, 1}},
	} {
		get(t, e, step.path)
		if got := [3]int64{confSpy.sets.Load(), reqSpy.sets.Load(), dataSpy.sets.Load()}; got != step.want {
			t.Errorf("after GET %s, sets (configured, request, data) = %v; want %v", step.path, got, step.want)
		}
	}
}

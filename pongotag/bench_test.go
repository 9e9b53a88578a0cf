package pongotag_test

import (
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/pongotag"
	"github.com/echocache/echocache/stores"
)

// benchPage is the walkthrough's zen.html inside a small page. The cached
// block's output is pasted into benchLiteral, so the two benchmarks render
// the same bytes and differ only by the block being served from the cache.
const benchPage = `<!doctype html>
<html>
<head><title>{{ title }}</title></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
{% cache 30 %}
<h3> Random Zen of Python </h3>
<strong>{{ get_random_quote() }}</strong>
{% endcache %}
<footer>{{ title }}</footer>
</body>
</html>
`

const benchQuote = "Beautiful is better than ugly."

func benchTemplates(b *testing.B) (cached, literal *pongo2.Template, ctx pongo2.Context) {
	b.Helper()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	c := echocache.New(m)
	ctx = pongo2.Context{
		"title":            "Zen",
		"get_random_quote": func() string { return benchQuote },
		pongotag.CacheVar:  c,
	}
	cached = pongo2.Must(pongo2.FromString(benchPage))
	block := "\n<h3> Random Zen of Python </h3>\n<strong>" + benchQuote + "</strong>\n"
	start := strings.Index(benchPage, "{% cache 30 %}")
	end := strings.Index(benchPage, "{% endcache %}") + len("{% endcache %}")
	literal = pongo2.Must(pongo2.FromString(benchPage[:start] + block + benchPage[end:]))

	want, err := literal.Execute(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for range 2 { // miss, then hit
		got, err := cached.Execute(ctx)
		if err != nil || got != want {
			b.Fatalf("cached page = %q, %v; want %q", got, err, want)
		}
	}
	if s := c.Stats(); s.Hits != 1 {
		b.Fatalf("warm-up hits = %d; want 1", s.Hits)
	}
	return cached, literal, ctx
}

func BenchmarkCachedBlockHit(b *testing.B) {
	cached, _, ctx := benchTemplates(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cached.ExecuteBytes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLiteralBlock(b *testing.B) {
	_, literal, ctx := benchTemplates(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := literal.ExecuteBytes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedBlockHitVary is the hit path of a named block with a
// vary-on value: its key is hashed at every render.
func BenchmarkCachedBlockHitVary(b *testing.B) {
	_, _, ctx := benchTemplates(b)
	ctx["user"] = goldenUser{ID: 42, Name: "ann"}
	tpl := pongo2.Must(pongo2.FromString(strings.Replace(benchPage, "{% cache 30 %}", `{% cache 30 "quote" user %}`, 1)))
	if _, err := tpl.ExecuteBytes(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.ExecuteBytes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

package pongotag_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/pongotag"
)

// newSet returns a template set over files, read through pongotag's
// loader. Each call is a fresh set, as after a restart.
func newSet(t *testing.T, files fstest.MapFS) *pongo2.TemplateSet {
	t.Helper()
	return pongo2.NewSet(t.Name(), pongotag.NewLoader(files))
}

func renderFile(t *testing.T, set *pongo2.TemplateSet, name string, ctx pongo2.Context) string {
	t.Helper()
	tpl, err := set.FromFile(name)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return render(t, tpl, ctx)
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// Children that override the block holding a cache block each get their
// own entry.
func TestCacheInsideOverriddenBlock(t *testing.T) {
	c, _, _ := newCache(t)
	files := fstest.MapFS{
		"base.html": file(`<main>{% block content %}{% cache 30 %}default {{ next() }}{% endcache %}{% endblock %}</main>`),
		// The same block source, at the same line and column, in two children.
		"a.html": file(`{% extends "base.html" %}{% block content %}{% cache 30 %}{{ who }} {{ next() }}{% endcache %}{% endblock %}`),
		"b.html": file(`{% extends "base.html" %}{% block content %}{% cache 30 %}{{ who }} {{ next() }}{% endcache %}{% endblock %}`),
		"c.html": file(`{% extends "base.html" %}`),
		"d.html": file(`{% extends "base.html" %}`),
	}
	set := newSet(t, files)
	var n counter
	page := func(name, who string) string {
		return renderFile(t, set, name, pongo2.Context{pongotag.CacheVar: c, "next": n.next, "who": who})
	}
	steps := []struct{ tpl, who, want string }{
		{"a.html", "A", "<main>A 1</main>"},
		{"b.html", "B", "<main>B 2</main>"},
		{"a.html", "A", "<main>A 1</main>"},
		{"b.html", "B", "<main>B 2</main>"},
		// Children that do not override share the parent's block.
		{"c.html", "", "<main>default 3</main>"},
		{"d.html", "", "<main>default 3</main>"},
		{"base.html", "", "<main>default 3</main>"},
	}
	for i, s := range steps {
		if got := page(s.tpl, s.who); got != s.want {
			t.Errorf("step %d: %s = %q; want %q", i+1, s.tpl, got, s.want)
		}
	}
}

// A cache block around a {% block %} renders differently for each child
// that overrides the inner block; each child gets its own entry, and each
// of those hits.
func TestCacheAroundOverriddenBlock(t *testing.T) {
	c, _, _ := newCache(t)
	files := fstest.MapFS{
		"layout.html": file(`{% cache 30 %}<nav>{{ next() }}</nav>{% block content %}none{% endblock %}{% endcache %}`),
		"a.html":      file(`{% extends "layout.html" %}{% block content %}A{% endblock %}`),
		"b.html":      file(`{% extends "layout.html" %}{% block content %}B{% endblock %}`),
		"mid.html":    file(`{% extends "layout.html" %}{% block content %}mid[{{ block.Super }}]{% endblock %}`),
		"leaf.html":   file(`{% extends "mid.html" %}`),
	}
	set := newSet(t, files)
	var n counter
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}
	steps := []struct{ tpl, want string }{
		{"a.html", "<nav>1</nav>A"},
		{"b.html", "<nav>2</nav>B"},
		{"layout.html", "<nav>3</nav>none"},
		{"leaf.html", "<nav>4</nav>mid[none]"},
		{"a.html", "<nav>1</nav>A"},
		{"b.html", "<nav>2</nav>B"},
		{"layout.html", "<nav>3</nav>none"},
		{"leaf.html", "<nav>4</nav>mid[none]"},
	}
	for i, s := range steps {
		if got := renderFile(t, set, s.tpl, ctx); got != s.want {
			t.Errorf("step %d: %s = %q; want %q", i+1, s.tpl, got, s.want)
		}
	}

	// Editing a child's overriding block (a new process reads the new
	// file) invalidates that child's entry only.
	files["a.html"] = file(`{% extends "layout.html" %}{% block content %}A2{% endblock %}`)
	set2 := newSet(t, files)
	if got := renderFile(t, set2, "a.html", ctx); got != "<nav>5</nav>A2" {
		t.Errorf("edited child = %q; want <nav>5</nav>A2", got)
	}
	if got := renderFile(t, set2, "b.html", ctx); got != "<nav>2</nav>B" {
		t.Errorf("other child after the edit = %q; want its entry <nav>2</nav>B", got)
	}
}

// block.Super inside a cached block depends on the parent's source.
func TestCachedSuperFollowsParentEdits(t *testing.T) {
	c, _, _ := newCache(t)
	files := fstest.MapFS{
		"base.html":  file(`{% block head %}v1{% endblock %}`),
		"child.html": file(`{% extends "base.html" %}{% block head %}{% cache 30 %}[{{ block.Super }}]{% endcache %}{% endblock %}`),
	}
	ctx := pongo2.Context{pongotag.CacheVar: c}
	if got := renderFile(t, newSet(t, files), "child.html", ctx); got != "[v1]" {
		t.Fatalf("first render = %q", got)
	}
	files["base.html"] = file(`{% block head %}v2{% endblock %}`)
	if got := renderFile(t, newSet(t, files), "child.html", ctx); got != "[v2]" {
		t.Errorf("after editing the parent = %q; want [v2]", got)
	}
}

func TestNamedBlockAroundBlockTagIsAnError(t *testing.T) {
	set := newSet(t, fstest.MapFS{
		"layout.html": file("<html>\n{% cache 30 \"layout\" %}{% block content %}{% endblock %}{% endcache %}"),
	})
	_, err := set.FromFile("layout.html")
	if err == nil || !strings.Contains(err.Error(), "layout.html | Line 2 Col 4") || !strings.Contains(err.Error(), "{% block %}") {
		t.Errorf("parse error = %v; want one naming layout.html line 2 and the block tag", err)
	}
}

func TestEditedBlockInvalidatesUnnamedEntry(t *testing.T) {
	c, _, _ := newCache(t)
	var n counter
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}
	files := fstest.MapFS{"page.html": file("<h1>Title</h1>\n{% cache 30 %}<p>old {{ next() }}</p>{% endcache %}\n<footer>1</footer>")}
	if got := renderFile(t, newSet(t, files), "page.html", ctx); got != "<h1>Title</h1>\n<p>old 1</p>\n<footer>1</footer>" {
		t.Fatalf("first render = %q", got)
	}

	// An edit outside the block keeps its entry...
	files["page.html"] = file("<h1>Other</h1>\n{% cache 30 %}<p>old {{ next() }}</p>{% endcache %}\n<footer>2</footer>")
	if got := renderFile(t, newSet(t, files), "page.html", ctx); got != "<h1>Other</h1>\n<p>old 1</p>\n<footer>2</footer>" {
		t.Errorf("after editing outside the block = %q; want the cached block", got)
	}
	// ...an edit of the block itself does not.
	files["page.html"] = file("<h1>Other</h1>\n{% cache 30 %}<p>new {{ next() }}</p>{% endcache %}\n<footer>2</footer>")
	if got := renderFile(t, newSet(t, files), "page.html", ctx); got != "<h1>Other</h1>\n<p>new 2</p>\n<footer>2</footer>" {
		t.Errorf("after editing the block = %q; want it rendered afresh", got)
	}
}

// Two templates made from strings share nothing, even with the same block
// at the same position.
func TestStringTemplatesAreDistinct(t *testing.T) {
	c, _, _ := newCache(t)
	ctx := pongo2.Context{pongotag.CacheVar: c}
	a := render(t, mustParse(t, `{% set x = 1 %}{% cache 30 %}{{ x }}{% endcache %}`), ctx)
	b := render(t, mustParse(t, `{% set x = 2 %}{% cache 30 %}{{ x }}{% endcache %}`), ctx)
	if a != "1" || b != "2" {
		t.Errorf("renders = %q, %q; want 1, 2", a, b)
	}
}

// Two cache blocks with the same source in one template are two entries.
func TestSameSourceTwoPositions(t *testing.T) {
	c, _, _ := newCache(t)
	var n counter
	tpl := mustParse(t, `{% cache 30 %}{{ next() }}{% endcache %}-{% cache 30 %}{{ next() }}{% endcache %}`)
	if got := render(t, tpl, pongo2.Context{pongotag.CacheVar: c, "next": n.next}); got != "1-2" {
		t.Errorf("render = %q; want 1-2", got)
	}
}

// A template that includes itself meets its own cache block again while
// rendering it: the inner one renders uncached instead of waiting for
// itself forever.
func TestSelfIncludeDoesNotDeadlock(t *testing.T) {
	c, _, _ := newCache(t)
	set := newSet(t, fstest.MapFS{
		"tree.html": file(`{% cache 30 %}({{ depth }}{% if depth < 3 %}{% include self with depth=depth+1 %}{% endif %}){% endcache %}`),
	})
	tpl, err := set.FromFile("tree.html")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		out, err := tpl.Execute(pongo2.Context{pongotag.CacheVar: c, "depth": 1, "self": "tree.html"})
		if err != nil {
			out = err.Error()
		}
		done <- out
	}()
	select {
	case got := <-done:
		if got != "(1(2(3)))" {
			t.Errorf("render = %q; want (1(2(3)))", got)
		}
	case <-timeAfter(t):
		t.Fatal("rendering a self-including cached template deadlocked")
	}
}

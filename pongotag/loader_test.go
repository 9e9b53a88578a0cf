package pongotag_test

import (
	"embed"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/pongotag"
)

//go:embed testdata/syntax/*.html
var embedded embed.FS

func TestLoaderNames(t *testing.T) {
	l := pongotag.NewLoader(fstest.MapFS{})
	cases := []struct{ base, name, want string }{
		{"", "index.html", "index.html"},
		{"", "/index.html", "index.html"},
		{"pages/a.html", "base.html", "base.html"},
		{"pages/a.html", "parts/nav.html", "parts/nav.html"},
		{"", "pages/../index.html", "index.html"},
		{"", "../../etc/passwd", "etc/passwd"},
		{"", `pages\a.html`, "pages/a.html"},
	}
	for _, tc := range cases {
		if got := l.Abs(tc.base, tc.name); got != tc.want {
			t.Errorf("Abs(%q, %q) = %q; want %q", tc.base, tc.name, got, tc.want)
		}
	}
}

func TestRendererOverEmbedFS(t *testing.T) {
	sub, err := fs.Sub(embedded, "testdata/syntax")
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := newCache(t)
	r := pongotag.NewRenderer(sub, c)
	var n counter
	for range 2 {
		var sb strings.Builder
		if err := r.Render(&sb, "percent.html", pongo2.Context{"next": n.next}, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sb.String(), "<p>1 at 100%</p><p>2</p>") {
			t.Errorf("page = %q", sb.String())
		}
	}
}

// closeCountingFS counts files closed.
type closeCountingFS struct {
	fs.FS
	open int
}

type countedFile struct {
	fs.File
	fsys *closeCountingFS
}

func (f countedFile) Close() error { f.fsys.open--; return f.File.Close() }

func (c *closeCountingFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	c.open++
	return countedFile{f, c}, nil
}

func TestWrapLoader(t *testing.T) {
	files := &closeCountingFS{FS: fstest.MapFS{
		"a.html": file(`{% extends "b.html" %}{% block x %}<% cache 30 %>A{{ next() }}<% endcache %>{% endblock %}`),
		"b.html": file(`[{% block x %}{% endblock %}]`),
	}}
	set := pongo2.NewSet(t.Name(), pongotag.WrapLoader(pongo2.NewFSLoader(files)))
	tpl, err := set.FromFile("a.html")
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := newCache(t)
	var n counter
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}
	if got := render(t, tpl, ctx) + render(t, tpl, ctx); got != "[A1][A1]" {
		t.Errorf("renders = %q; want [A1][A1]", got)
	}
	if files.open != 0 {
		t.Errorf("%d template files left open", files.open)
	}
	if _, err := set.FromFile("missing.html"); err == nil {
		t.Errorf("missing template: no error")
	}
}

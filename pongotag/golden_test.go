package pongotag_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/pongotag"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the file name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

type goldenUser struct {
	ID   int
	Name string
}

// TestGoldenSyntax renders every template in testdata/syntax twice, with a
// fresh cache, and compares both renders with its .golden file: the first
// render fills the cache, the second shows what is served from it (next()
// counts the times a body ran).
func TestGoldenSyntax(t *testing.T) {
	dir := filepath.Join("testdata", "syntax")
	names, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates in %s: %v", dir, err)
	}
	for _, path := range names {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			c, _, logs := newCache(t)
			set := pongo2.NewSet(name, pongotag.NewLoader(os.DirFS(dir)))
			tpl, err := set.FromFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var n counter
			ctx := pongo2.Context{
				pongotag.CacheVar: c,
				"next":            n.next,
				"ttl":             15,
				"lang":            "en",
				"html":            `<a href="x">&</a>`,
				"users":           []goldenUser{{1, "ann"}, {2, "bob"}, {1, "ann"}},
			}
			var out strings.Builder
			for i := range 2 {
				s, err := tpl.Execute(ctx)
				if err != nil {
					t.Fatalf("render %d: %v", i+1, err)
				}
				if i == 1 {
					out.WriteString("\n--- second render ---\n")
				}
				out.WriteString(s)
			}
			if l := logs.text(); l != "" {
				t.Errorf("warnings: %s", l)
			}
			golden(t, strings.TrimSuffix(path, ".html")+".golden", out.String())
		})
	}
}

// TestGoldenErrors parses every template in testdata/errors and compares
// the error with its .golden file. Every error names the template, the
// line and column, and what was expected.
func TestGoldenErrors(t *testing.T) {
	dir := filepath.Join("testdata", "errors")
	names, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates in %s: %v", dir, err)
	}
	for _, path := range names {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			set := pongo2.NewSet(name, pongotag.NewLoader(os.DirFS(dir)))
			_, err := set.FromFile(name)
			if err == nil {
				t.Fatalf("%s parsed without error", name)
			}
			msg := err.Error()
			if !strings.Contains(msg, " in "+name+" | Line ") {
				t.Errorf("error %q does not name %s and a line", msg, name)
			}
			golden(t, strings.TrimSuffix(path, ".html")+".golden", msg+"\n")
		})
	}
}

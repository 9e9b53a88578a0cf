package main

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/internal/demotest"
)

var pages = []string{"/", "/percent"}

// parts returns the cached proverb and the uncached time of a page.
func parts(t *testing.T, e *echo.Echo, path string) (proverb, now string) {
	t.Helper()
	body := demotest.Get(t, e, path)
	proverb = demotest.Between(t, body, "<strong>", "</strong>")
	now = demotest.Between(t, body, "Rendered at ", "</p>")
	if _, err := time.Parse(time.RFC3339Nano, now); err != nil {
		t.Errorf("GET %s: time %q is not RFC 3339: %v", path, now, err)
	}
	if strings.Contains(body, "cache 30") {
		t.Errorf("GET %s shows the cache tag itself:\n%s", path, body)
	}
	return proverb, now
}

func TestBlockIsCachedTimeIsNot(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))

	proverbs := map[string]string{}
	for _, path := range pages {
		proverb, now := parts(t, e, path)
		for range 3 {
			p, n := parts(t, e, path)
			if p != proverb {
				t.Errorf("GET %s: proverb %q; want the cached %q", path, p, proverb)
			}
			if n == now {
				t.Errorf("GET %s: time %q again; want a fresh time outside the block", path, n)
			}
		}
		proverbs[path] = proverb
	}
	if proverbs["/"] == proverbs["/percent"] {
		t.Errorf("the blocks of both templates share one entry: %q", proverbs["/"])
	}
}

// TestBlockExpires renders the same templates with the TTL of their cache
// tags cut from 30 seconds to a few milliseconds.
func TestBlockExpires(t *testing.T) {
	short := fstest.MapFS{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		ttl := strconv.FormatFloat(demotest.ShortTTL.Seconds(), 'f', -1, 64)
		s := strings.NewReplacer(
			"{% cache 30 %}", "{% cache "+ttl+" %}",
			"<% cache 30 %>", "<% cache "+ttl+" %>",
		).Replace(string(src))
		if s == string(src) {
			t.Fatalf("%s has no cache tag with TTL 30", path)
		}
		short[path] = &fstest.MapFile{Data: []byte(s)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	old := templates
	templates = short
	t.Cleanup(func() { templates = old })

	for _, path := range pages {
		t.Run(path, func(t *testing.T) {
			demotest.RotateProverbs(t)
			e := newServer(demotest.Memory(t))
			proverb, _ := parts(t, e, path)
			demotest.Eventually(t, func() bool { p, _ := parts(t, e, path); return p != proverb },
				"the proverb block of %s to expire", path)
		})
	}
}

package main

import (
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/cached-blueprint-app/cache"
	"github.com/echocache/echocache/examples/cached-blueprint-app/zen"
	"github.com/echocache/echocache/examples/internal/demotest"
)

func TestGroupRouteIsCached(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))

	first := demotest.Get(t, e, "/")
	for range 3 {
		if got := demotest.Get(t, e, "/"); got != first {
			t.Errorf("GET / = %q; want the cached %q", got, first)
		}
	}
}

func TestGroupRouteExpires(t *testing.T) {
	demotest.RotateProverbs(t)
	demotest.Shorten(t, &zen.CachedFor)
	e := newServer(demotest.Memory(t))

	first := demotest.Get(t, e, "/")
	demotest.Eventually(t, func() bool { return demotest.Get(t, e, "/") != first },
		"GET / to stop returning %q after %v", first, zen.CachedFor)
}

// TestUncachedUntilInit is the lazy init_app pattern: the middleware is
// built while the cache has no store, serves uncached until Init, and
// caches from then on.
func TestUncachedUntilInit(t *testing.T) {
	demotest.RotateProverbs(t)
	cache.Cache.Init(nil)
	t.Cleanup(func() { cache.Cache.Init(nil) })

	e := echo.New()
	zen.Register(e.Group(""))
	if a, b := demotest.Get(t, e, "/"), demotest.Get(t, e, "/"); a == b {
		t.Fatalf("before Init, GET / returned %q twice; want uncached pages", a)
	}

	cache.Cache.Init(demotest.Memory(t))
	first := demotest.Get(t, e, "/")
	if got := demotest.Get(t, e, "/"); got != first {
		t.Errorf("after Init, GET / = %q; want the cached %q", got, first)
	}
}

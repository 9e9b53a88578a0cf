package main

import (
	"testing"

	"github.com/echocache/echocache/examples/internal/demotest"
	"github.com/echocache/echocache/examples/modular-views/views"
)

func TestViewIsCached(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))

	first := demotest.Get(t, e, "/")
	for range 3 {
		if got := demotest.Get(t, e, "/"); got != first {
			t.Errorf("GET / = %q; want the cached %q", got, first)
		}
	}
}

func TestViewExpires(t *testing.T) {
	demotest.RotateProverbs(t)
	demotest.Shorten(t, &cachedFor)
	e := newServer(demotest.Memory(t))

	first := demotest.Get(t, e, "/")
	demotest.Eventually(t, func() bool { return demotest.Get(t, e, "/") != first },
		"GET / to stop returning %q after %v", first, cachedFor)
}

// TestViewsKnowNothingOfCaching calls the view as registered without the
// cache: every call is fresh.
func TestViewsKnowNothingOfCaching(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))
	e.GET("/uncached", views.Zen)
	if a, b := demotest.Get(t, e, "/uncached"), demotest.Get(t, e, "/uncached"); a == b {
		t.Errorf("views.Zen returned %q twice; want a fresh page each call", a)
	}
}

package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/echocache/echocache/examples/internal/demotest"
)

var pages = []struct {
	path string
	ttl  *time.Duration
}{
	{"/", &methodCachedFor},
	{"/view", &viewCachedFor},
}

func TestGetIsCached(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))

	seen := map[string]string{}
	for _, p := range pages {
		first := demotest.Get(t, e, p.path)
		for range 3 {
			if got := demotest.Get(t, e, p.path); got != first {
				t.Errorf("GET %s = %q; want the cached %q", p.path, got, first)
			}
		}
		seen[p.path] = first
	}
	if seen["/"] == seen["/view"] {
		t.Errorf("GET / and GET /view share one entry: %q", seen["/"])
	}
}

func TestPostIsNeverCached(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))

	for _, p := range pages {
		a := demotest.Do(t, e, http.MethodPost, p.path)
		b := demotest.Do(t, e, http.MethodPost, p.path)
		if a.Code != http.StatusOK || b.Code != http.StatusOK {
			t.Fatalf("POST %s = %d, %d; want 200", p.path, a.Code, b.Code)
		}
		if a.Body.String() == b.Body.String() {
			t.Errorf("POST %s returned %q twice; want a fresh answer each time", p.path, a.Body.String())
		}
	}
}

func TestGetExpires(t *testing.T) {
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			demotest.RotateProverbs(t)
			demotest.Shorten(t, p.ttl)
			e := newServer(demotest.Memory(t))

			first := demotest.Get(t, e, p.path)
			demotest.Eventually(t, func() bool { return demotest.Get(t, e, p.path) != first },
				"GET %s to stop returning %q after %v", p.path, first, *p.ttl)
		})
	}
}

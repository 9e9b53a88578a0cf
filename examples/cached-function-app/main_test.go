package main

import (
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/internal/demotest"
	"github.com/echocache/echocache/stores"
)

func cachedPart(t *testing.T, body string) string {
	return demotest.Between(t, body, "It is cached:</strong> ", "</li>")
}

func uncachedPart(t *testing.T, body string) string {
	return demotest.Between(t, body, "It is not cached:</strong> ", "</li>")
}

var servers = []struct {
	name      string
	newServer func(stores.Store) *echo.Echo
	isTime    func(s string) bool // reports whether the cached part is the one expected
}{
	{"time cached", newServer, isTime},
	{"proverb cached (-swap)", newSwappedServer, func(s string) bool { return !isTime(s) }},
}

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func TestCachedPartRepeatsUncachedPartChanges(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			demotest.RotateProverbs(t)
			e := srv.newServer(demotest.Memory(t))

			first := demotest.Get(t, e, "/")
			if !srv.isTime(cachedPart(t, first)) {
				t.Fatalf("GET / = %s; the cached part is not the one expected", first)
			}
			for range 3 {
				body := demotest.Get(t, e, "/")
				if got, want := cachedPart(t, body), cachedPart(t, first); got != want {
					t.Errorf("cached part = %q; want %q, the cached one", got, want)
				}
				if got, old := uncachedPart(t, body), uncachedPart(t, first); got == old {
					t.Errorf("uncached part = %q again; want a fresh one", got)
				}
			}
		})
	}
}

func TestCachedPartExpires(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			demotest.RotateProverbs(t)
			demotest.Shorten(t, &cachedFor)
			e := srv.newServer(demotest.Memory(t))

			cached := cachedPart(t, demotest.Get(t, e, "/"))
			demotest.Eventually(t, func() bool {
				return cachedPart(t, demotest.Get(t, e, "/")) != cached
			}, "the cached part %q to expire after %v", cached, cachedFor)
		})
	}
}

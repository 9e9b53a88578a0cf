package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/echocache/echocache/examples/internal/demotest"
)

func TestRepeatedRequestIsCached(t *testing.T) {
	e := newServer(demotest.Memory(t))

	first := demotest.Do(t, e, http.MethodGet, "/")
	if got := first.Header().Get("X-Cache"); got != "MISS" {
		t.Errorf("first GET / X-Cache = %q; want MISS", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, first.Body.String()); err != nil {
		t.Errorf("GET / = %q; want an RFC 3339 time: %v", first.Body.String(), err)
	}
	for range 3 {
		rec := demotest.Do(t, e, http.MethodGet, "/")
		if got, want := rec.Body.String(), first.Body.String(); got != want {
			t.Errorf("GET / = %q; want the cached %q", got, want)
		}
		if got := rec.Header().Get("X-Cache"); got != "HIT" {
			t.Errorf("repeated GET / X-Cache = %q; want HIT", got)
		}
	}
}

func TestEntryExpires(t *testing.T) {
	demotest.Shorten(t, &cachedFor)
	e := newServer(demotest.Memory(t))

	first := demotest.Get(t, e, "/")
	demotest.Eventually(t, func() bool { return demotest.Get(t, e, "/") != first },
		"GET / to stop returning %q after %v", first, cachedFor)
}

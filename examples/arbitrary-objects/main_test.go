package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demotest"
)

var paths = []string{"/context", "/package", "/get-or-set"}

func getStuff(t *testing.T, e *echo.Echo, path string) Stuff {
	t.Helper()
	body := demotest.Get(t, e, path)
	var s Stuff
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("GET %s = %q; want a JSON Stuff: %v", path, body, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, s.ComputedAt); err != nil {
		t.Errorf("GET %s: computed_at %q is not RFC 3339: %v", path, s.ComputedAt, err)
	}
	return s
}

func TestComputedOnceThenStored(t *testing.T) {
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			e := newServer(demotest.Memory(t))
			first := getStuff(t, e, path)
			for range 3 {
				if got := getStuff(t, e, path); got != first {
					t.Errorf("GET %s = %+v; want the stored %+v", path, got, first)
				}
			}
		})
	}
}

func TestPathsUseTheirOwnKeys(t *testing.T) {
	demotest.RotateProverbs(t)
	e := newServer(demotest.Memory(t))
	seen := map[Stuff]string{}
	for _, path := range paths {
		s := getStuff(t, e, path)
		if other, dup := seen[s]; dup {
			t.Errorf("GET %s and GET %s returned the same value %+v", path, other, s)
		}
		seen[s] = path
	}
}

func TestStoredValueExpires(t *testing.T) {
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			demotest.Shorten(t, &cachedFor)
			e := newServer(demotest.Memory(t))
			first := getStuff(t, e, path)
			demotest.Eventually(t, func() bool { return getStuff(t, e, path) != first },
				"GET %s to stop returning %+v after %v", path, first, cachedFor)
		})
	}
}

// TestValueIsInTheStore checks that the handlers store the value where the
// typed API reads it: a Stuff under a_key, decoded from the store's bytes.
func TestValueIsInTheStore(t *testing.T) {
	store := demotest.Memory(t)
	e := newServer(store)
	want := getStuff(t, e, "/context")

	other := echocache.New(store) // another Cache on the same store, as another process would be
	got, err := echocache.Get[Stuff](t.Context(), other, "a_key")
	if err != nil || got != want {
		t.Errorf("Get[Stuff](a_key) = %+v, %v; want %+v", got, err, want)
	}
}

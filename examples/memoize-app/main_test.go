package main

import (
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/examples/internal/demotest"
)

func TestMemoizedPerName(t *testing.T) {
	e := newServer(demotest.Memory(t))

	alice := demotest.Get(t, e, "/alice")
	name, ts, ok := strings.Cut(alice, " - ")
	if !ok || name != "alice" {
		t.Fatalf("GET /alice = %q; want \"alice - <time>\"", alice)
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("GET /alice = %q; the time is not RFC 3339: %v", alice, err)
	}
	if got := demotest.Get(t, e, "/alice"); got != alice {
		t.Errorf("GET /alice again = %q; want the memoized %q", got, alice)
	}

	bob := demotest.Get(t, e, "/bob")
	if !strings.HasPrefix(bob, "bob - ") {
		t.Fatalf("GET /bob = %q; want \"bob - <time>\"", bob)
	}
	if _, bobTime, _ := strings.Cut(bob, " - "); bobTime == ts {
		t.Errorf("GET /bob reused alice's result %q", alice)
	}
	if got := demotest.Get(t, e, "/bob"); got != bob {
		t.Errorf("GET /bob again = %q; want the memoized %q", got, bob)
	}
}

func TestMemoizedResultExpires(t *testing.T) {
	demotest.Shorten(t, &cachedFor)
	e := newServer(demotest.Memory(t))

	first := demotest.Get(t, e, "/alice")
	demotest.Eventually(t, func() bool { return demotest.Get(t, e, "/alice") != first },
		"GET /alice to stop returning %q after %v", first, cachedFor)
}

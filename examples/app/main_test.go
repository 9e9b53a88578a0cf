package main

import (
	"testing"
	"time"

	"github.com/echocache/echocache/examples/internal/demotest"
)

func TestEveryRequestIsFresh(t *testing.T) {
	e := newServer()
	first := demotest.Get(t, e, "/")
	second := demotest.Get(t, e, "/")
	if first == second {
		t.Fatalf("GET / twice = %q both times; want a fresh time each time (no cache)", first)
	}
	for _, body := range []string{first, second} {
		if _, err := time.Parse(time.RFC3339Nano, body); err != nil {
			t.Errorf("GET / = %q; want an RFC 3339 time: %v", body, err)
		}
	}
}

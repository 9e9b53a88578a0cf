package main

import (
	"testing"

	"github.com/echocache/echocache/examples/internal/demotest"
)

func TestRepeatedRequestIsCached(t *testing.T) {
	demotest.CachedView(t, newServer(demotest.Memory(t)))
}

func TestEntryExpires(t *testing.T) {
	demotest.CachedViewExpires(t, newServer, &cachedFor)
}

package main

import (
	"net/http"
	"testing"

	"github.com/echocache/echocache/examples/internal/demotest"
	"github.com/echocache/echocache/stores"
)

func TestRepeatedRequestIsCached(t *testing.T) {
	demotest.CachedView(t, newServer(demotest.Memory(t)))
}

func TestEntryExpires(t *testing.T) {
	demotest.CachedViewExpires(t, func(s stores.Store) http.Handler { return newServer(s) }, &cachedFor)
}

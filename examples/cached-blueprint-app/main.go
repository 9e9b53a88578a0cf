// Command cached-blueprint-app is the walkthrough's "Caching Blueprint
// views": the routes live in a group of their own (package zen) and the
// cache object in package cache, created with no store and initialised here
// in main, like Flask-Cache's init_app. GET / is cached for 20 seconds.
//
//	go run ./examples/cached-blueprint-app
package main

import (
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/cached-blueprint-app/cache"
	"github.com/echocache/echocache/examples/cached-blueprint-app/zen"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/stores"
)

func newServer(store stores.Store) *echo.Echo {
	e := echo.New()
	zen.Register(e.Group(""))

	// The group's middleware was built before the cache had a store; it
	// uses the store from now on.
	cache.Cache.Init(store)
	return e
}

func main() {
	demo.Main(newServer)
}

// Package cache holds the cached-blueprint-app's cache, created before the
// app knows which store it will use, so that route groups can import it
// without importing main. main gives it its store with Init, as the
// walkthrough's app.py calls cache.init_app(app); until then every cached
// route runs uncached.
package cache

import "github.com/echocache/echocache/echocache"

// Cache is the app's cache. It has no store until main calls Cache.Init.
var Cache = echocache.New(nil)

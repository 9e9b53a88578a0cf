// Command arbitrary-objects is the walkthrough's "Caching arbitrary
// objects": where a decorator does not fit, a handler reads a value, computes
// it on a miss and stores it for 300 seconds. GET /context reaches the cache
// through the Echo context (Flask's current_app.cache), as a handler in any
// package can; GET /package uses the package-level cache variable (the
// walkthrough's `from cache import cache`). GET /get-or-set does the same
// in one call.
//
//	go run ./examples/arbitrary-objects
//	curl http://127.0.0.1:5000/context
package main

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/examples/proverbs"
	"github.com/echocache/echocache/stores"
)

// cachedFor is how long the values are stored: 300 seconds, as in the
// walkthrough. Tests shorten it.
var cachedFor = 300 * time.Second

// Stuff is the arbitrary object: any Go value the cache's codec can encode.
type Stuff struct {
	Proverb    string `json:"proverb"`
	ComputedAt string `json:"computed_at"`
}

func doSomeStuff() Stuff {
	return Stuff{Proverb: proverbs.Random(), ComputedAt: time.Now().Format(time.RFC3339Nano)}
}

// cache is created before its store is known; newServer initialises it.
var cache = echocache.New(nil)

// someFunction takes the cache from the Echo context.
func someFunction(c echo.Context) (Stuff, error) {
	ctx := c.Request().Context()
	appCache := echocache.FromContext(c)

	cached, err := echocache.Get[Stuff](ctx, appCache, "a_key")
	if err == nil {
		return cached, nil
	}
	result := doSomeStuff()
	err = echocache.Set(ctx, appCache, "a_key", result, cachedFor)
	return result, err
}

// function uses the package-level cache directly.
func function(ctx context.Context) (Stuff, error) {
	cached, err := echocache.Get[Stuff](ctx, cache, "another_key")
	if err == nil {
		return cached, nil
	}
	result := doSomeStuff()
	err = echocache.Set(ctx, cache, "another_key", result, cachedFor)
	return result, err
}

// inOneCall does the same with GetOrSet, which also makes concurrent
// callers of a missing key share one computation.
func inOneCall(ctx context.Context) (Stuff, error) {
	return echocache.GetOrSet(ctx, cache, "third_key", cachedFor,
		func(context.Context) (Stuff, error) {
			return doSomeStuff(), nil
		})
}

func newServer(store stores.Store) *echo.Echo {
	cache.Init(store)

	e := echo.New()
	e.Use(echocache.WithCache(cache)) // handlers find it with echocache.FromContext
	e.GET("/context", func(c echo.Context) error {
		stuff, err := someFunction(c)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, stuff)
	})
	e.GET("/package", func(c echo.Context) error {
		stuff, err := function(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, stuff)
	})
	e.GET("/get-or-set", func(c echo.Context) error {
		stuff, err := inOneCall(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, stuff)
	})
	return e
}

func main() {
	demo.Main(newServer)
}

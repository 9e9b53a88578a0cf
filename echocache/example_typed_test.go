package echocache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// A function without arguments cached under a fixed key, Flask-Cache's
// @cache.cached(timeout=10, key_prefix="current_time"): one part of a page
// is cached while the rest is not.
func ExampleFunction() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "memory://")
	if err != nil {
		panic(err)
	}
	cache := echocache.New(store)

	calls := 0
	currentTime := echocache.Function(cache, "current_time", 10*time.Second,
		func(ctx context.Context) (string, error) {
			calls++
			return fmt.Sprintf("the time, computed %d time(s)", calls), nil
		})

	for range 3 {
		now, err := currentTime.Get(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(now)
	}
	// The result is an ordinary value under the key "current_time".
	v, err := echocache.Get[string](ctx, cache, "current_time")
	fmt.Println(v, err)
	// Output:
	// the time, computed 1 time(s)
	// the time, computed 1 time(s)
	// the time, computed 1 time(s)
	// the time, computed 1 time(s) <nil>
}

// A memoized function, Flask-Cache's @cache.memoize(timeout=5): one entry
// per distinct argument.
func ExampleMemoize() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "memory://")
	if err != nil {
		panic(err)
	}
	cache := echocache.New(store)

	calls := map[string]int{}
	timeAndName := echocache.Memoize(cache, "get_current_time_and_name", 5*time.Second,
		func(ctx context.Context, name string) (string, error) {
			calls[name]++
			return fmt.Sprintf("%s - computed %d time(s)", name, calls[name]), nil
		})

	for _, name := range []string{"alice", "bob", "alice"} {
		v, _ := timeAndName.Get(ctx, name)
		fmt.Println(v)
	}
	_ = timeAndName.Forget(ctx, "alice") // drop one entry
	v, _ := timeAndName.Get(ctx, "alice")
	fmt.Println(v)
	_ = timeAndName.ForgetAll(ctx) // drop every entry, in O(1)
	v, _ = timeAndName.Get(ctx, "bob")
	fmt.Println(v)
	// Output:
	// alice - computed 1 time(s)
	// bob - computed 1 time(s)
	// alice - computed 1 time(s)
	// alice - computed 2 time(s)
	// bob - computed 2 time(s)
}

// Several arguments go in a struct; the key is built from every field's
// value, so {"a:b", ""} and {"a", "b"} never share an entry.
func ExampleMemoize_structArgument() {
	ctx := context.Background()
	store, _ := stores.Open(ctx, "memory://")
	cache := echocache.New(store)

	type page struct {
		Section string
		Number  int
	}
	render := echocache.Memoize(cache, "render_page", time.Minute,
		func(ctx context.Context, p page) (string, error) {
			return fmt.Sprintf("%s page %d", p.Section, p.Number), nil
		})
	v, _ := render.Get(ctx, page{"news", 2})
	fmt.Println(v)
	// Output: news page 2
}

// Explicit get, compute, set from a handler, with the Cache taken from the
// Echo context (Flask's current_app.cache): the handler's package does not
// need to import the package that created the cache.
func ExampleFromContext() {
	ctx := context.Background()
	store, _ := stores.Open(ctx, "memory://")
	cache := echocache.New(store)

	computed := 0
	someHandler := func(c echo.Context) error {
		cache := echocache.FromContext(c)
		ctx := c.Request().Context()
		cached, err := echocache.Get[string](ctx, cache, "a_key")
		if err == nil {
			return c.String(http.StatusOK, cached)
		}
		computed++
		result := fmt.Sprintf("result computed %d time(s)", computed)
		_ = echocache.Set(ctx, cache, "a_key", result, 300*time.Second)
		return c.String(http.StatusOK, result)
	}

	e := echo.New()
	e.Use(echocache.WithCache(cache))
	e.GET("/", someHandler)
	for range 2 {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body, _ := io.ReadAll(rec.Body)
		fmt.Println(string(body))
	}
	// Output:
	// result computed 1 time(s)
	// result computed 1 time(s)
}

// appCache is a cache object created on its own, before its store is known,
// the way an application keeps it in a small package of its own
// (package cache; var Cache = echocache.New(nil)).
var appCache = echocache.New(nil)

// Explicit get, compute, set through a package variable. GetOrSet does the
// same in one call, and shares one computation between concurrent callers.
func ExampleGet() {
	ctx := context.Background()
	store, _ := stores.Open(ctx, "memory://")
	appCache.Init(store) // in main

	doSomeStuff := func() []string { return []string{"computed", "result"} }
	function := func(ctx context.Context) []string {
		cached, err := echocache.Get[[]string](ctx, appCache, "a_key")
		if err == nil {
			return cached
		}
		if !errors.Is(err, echocache.ErrNotFound) {
			panic(err) // only with echocache.Strict(): a store error
		}
		result := doSomeStuff()
		_ = echocache.Set(ctx, appCache, "a_key", result, 300*time.Second)
		return result
	}
	fmt.Println(function(ctx))
	fmt.Println(function(ctx))

	v, _ := echocache.GetOrSet(ctx, appCache, "another_key", 300*time.Second,
		func(ctx context.Context) (int, error) { return 42, nil })
	fmt.Println(v)
	// Output:
	// [computed result]
	// [computed result]
	// 42
}

// Clearing the cache from a script: Clear removes every entry of the store's
// namespace (cached pages, memoized results, values, fragments) and nothing
// outside it, and reports the store's error.
func ExampleCache_Clear_script() {
	ctx := context.Background()
	// In a real script: stores.Open(ctx, os.Getenv("CACHE_URL")).
	store, err := stores.Open(ctx, "memory://")
	if err != nil {
		panic(err)
	}
	defer store.Close()
	cache := echocache.New(store)
	_ = echocache.Set(ctx, cache, "a_key", "value", time.Hour)

	if err := cache.Clear(ctx); err != nil {
		fmt.Println("clear failed:", err)
		return
	}
	_, err = echocache.Get[string](ctx, cache, "a_key")
	fmt.Println(errors.Is(err, echocache.ErrNotFound))
	// Output: true
}

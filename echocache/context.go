package echocache

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// SetTTL sets how long the response being built is cached, overriding the
// route's TTL (Flask-Caching's CachedResponse). A ttl of 0 (or any negative
// ttl but stores.NoExpiry) means the response is not stored;
// stores.NoExpiry keeps it until deleted. Outside cached routes it does
// nothing. It reaches the route through the request's context, so a
// handler that replaced c's request with one whose context does not derive
// from it (context.Background(), say) is not heard.
func SetTTL(c echo.Context, ttl time.Duration) {
	pagecache.SetTTL(c.Request().Context(), ttl)
}

// Tag attaches tags to the response being built, so that InvalidateTag
// drops it. Tag reads each tag's current version right away: call it
// before reading the data the response is built from, so that an
// invalidation that happens while the response is being built is not lost.
// Outside cached routes it does nothing. If the versions cannot be read
// (store error), the response is not stored.
func Tag(c echo.Context, tags ...string) {
	pagecache.Tag(c.Request().Context(), tags...)
}

// cacheContextKey is the echo.Context key WithCache stores the Cache under. It is
// spelled like an import path so that it cannot clash with an application's
// own keys.
const cacheContextKey = core.CacheContextKey

// WithCache returns middleware that puts c in every request's echo.Context,
// where handlers in any package find it with [FromContext] without
// importing the package that created it (Flask's current_app.cache). It
// also gives c the Echo logger, if c's Config has none and Echo's logger
// shows warnings (echo.New() sets it to ERROR, which hides them: then the
// cache keeps logging to slog.Default()).
//
//	e.Use(echocache.WithCache(appCache))
func WithCache(c *Cache) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			if c != nil {
				c.adoptEchoLogger(ec)
			}
			ec.Set(cacheContextKey, c)
			return next(ec)
		}
	}
}

// FromContext returns the Cache that [WithCache] put in ec, or nil when the
// request did not pass through WithCache. A nil *Cache is safe with the
// typed API: [Get] misses, [Set] does nothing, [GetOrSet] calls its loader,
// and the methods that report store errors (Delete, Has, Incr, ...) return
// ErrNoStore. Since that hides a forgotten WithCache, the first nil it
// returns in a process is logged (once, through slog.Default()).
func FromContext(ec echo.Context) *Cache {
	c, _ := ec.Get(cacheContextKey).(*Cache)
	if c == nil {
		core.WarnNoCache("e.Use(echocache.WithCache(cache))")
	}
	return c
}

// adoptEchoLogger gives c the logger of ec's Echo instance when c has none:
// the cheap check first, since the middleware calls it on every request.
func (c *Cache) adoptEchoLogger(ec echo.Context) {
	if c.core().HasLogger() {
		return
	}
	if e := ec.Echo(); e != nil && e.Logger != nil {
		c.core().AdoptLogger(e.Logger)
	}
}

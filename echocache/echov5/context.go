package echov5

import (
	"time"

	"github.com/labstack/echo/v5"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// SetTTL sets how long the response being built is cached, overriding the
// route's TTL: echocache.SetTTL for Echo v5. A ttl of 0 (or any negative
// ttl but stores.NoExpiry) means the response is not stored. Outside
// cached routes it does nothing. It reaches the route through the
// request's context.
func SetTTL(c *echo.Context, ttl time.Duration) {
	pagecache.SetTTL(c.Request().Context(), ttl)
}

// Tag attaches tags to the response being built, so that
// Cache.InvalidateTag drops it: echocache.Tag for Echo v5. Call it before
// reading the data the response is built from. Outside cached routes it
// does nothing; if the tag versions cannot be read, the response is not
// stored.
func Tag(c *echo.Context, tags ...string) {
	pagecache.Tag(c.Request().Context(), tags...)
}

// cacheContextKey is the *echo.Context key WithCache stores the Cache
// under, spelled like an import path so that it cannot clash with an
// application's own keys.
const cacheContextKey = core.CacheContextKeyV5

// WithCache returns middleware that puts c in every request's
// *echo.Context, where handlers find it with FromContext (Flask's
// current_app.cache). It also gives c the Echo logger, if c's Config has
// no Logger.
//
//	e.Use(echov5.WithCache(appCache))
func WithCache(c *echocache.Cache) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec *echo.Context) error {
			if c != nil {
				adoptLogger((*core.Cache)(c), ec)
			}
			ec.Set(cacheContextKey, c)
			return next(ec)
		}
	}
}

// FromContext returns the Cache that WithCache put in c, or nil when the
// request did not pass through WithCache. A nil *echocache.Cache is safe
// with the typed API (echocache.Get misses, echocache.Set does nothing);
// since that hides a forgotten WithCache, the first nil it returns in a
// process is logged (once, through slog.Default()).
func FromContext(c *echo.Context) *echocache.Cache {
	cache, _ := c.Get(cacheContextKey).(*echocache.Cache)
	if cache == nil {
		core.WarnNoCache("e.Use(echov5.WithCache(cache))")
	}
	return cache
}

// adoptLogger gives cache the logger of c's Echo instance (a *slog.Logger;
// warnings at slog.LevelWarn) when it has none.
func adoptLogger(cache *core.Cache, c *echo.Context) {
	if cache.HasLogger() {
		return
	}
	if e := c.Echo(); e != nil && e.Logger != nil {
		cache.AdoptLogger(core.SlogLogger(e.Logger))
	}
}

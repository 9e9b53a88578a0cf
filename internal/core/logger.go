package core

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/labstack/gommon/log"
)

// Logger receives the cache's warnings as printf-style lines
// (echocache.Logger; echo.Logger satisfies it).
type Logger interface {
	Warnf(format string, args ...any)
}

// Where the cache's lines go: Config.Slog, else Config.Logger, else the
// logger of the framework the cache serves (adopted by the route
// middleware, WithCache and the renderers) when that logger shows
// warnings, else slog.Default(), read at each line so that an app's
// slog.SetDefault applies whenever it is made.
//
// Why not always the framework's logger: echo.New() sets Echo v4's logger
// to ERROR, so lines logged there as warnings (a store outage the cache
// survives by design is a warning, not an error) never showed, and
// logging a recovery as an error would be wrong. A logger that drops
// warnings is therefore not adopted. slog.Default() is the process's
// standard logger: it prints INFO and above to stderr until the app
// configures it (slog.SetDefault), and then goes wherever the app's other
// lines go.

// AdoptLogger gives the cache l, a framework's logger, for its lines when
// Config names no logger and it has adopted none yet. A logger that
// reports a level above warnings (Echo v4's Level(), a slog logger not
// enabled at WARN) is not adopted: the cache keeps logging to
// slog.Default(), and a later call may adopt it once its level is lowered.
func (c *Cache) AdoptLogger(l Logger) {
	if l == nil || c.cfg.Slog != nil || c.cfg.Logger != nil || c.adopted.Load() != nil || !showsWarnings(l) {
		return
	}
	p := new(Logger) // allocated only here, not on every call
	*p = l
	c.adopted.CompareAndSwap(nil, p)
}

// HasLogger reports whether c has a logger of its own: Config.Slog,
// Config.Logger, or one adopted. The route middleware checks it on every
// request before it looks for the framework's logger.
func (c *Cache) HasLogger() bool {
	return c.cfg.Slog != nil || c.cfg.Logger != nil || c.adopted.Load() != nil
}

// showsWarnings reports whether l writes warnings: false for a gommon
// logger (Echo v4's) above WARN, or a slog logger not enabled at WARN.
func showsWarnings(l Logger) bool {
	switch l := l.(type) {
	case interface{ Level() log.Lvl }:
		return l.Level() <= log.WARN
	case slogLogger:
		return l.l.Enabled(context.Background(), slog.LevelWarn)
	}
	return true
}

// Logf logs a warning through the cache's logger, prefixed "echocache: ".
// Each message (told apart by its format) is rate-limited on its own: at
// most one line per LogInterval, the next line telling how many were
// dropped. A message that is not repeated (the circuit breaker opening,
// then closing) therefore always shows, however many lines of another
// message (store errors) came just before. Every part of the cache (and
// pongotag) logs through it, so that all of a cache's lines go to one
// place.
func (c *Cache) Logf(format string, args ...any) {
	n, ok := c.limiter(format).allow(time.Now().UnixNano(), c.logInterval())
	if !ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if n > 0 {
		msg += fmt.Sprintf(" (%d similar messages suppressed)", n)
	}
	switch {
	case c.cfg.Slog != nil:
		c.cfg.Slog.Log(context.Background(), slog.LevelWarn, "echocache: "+msg)
	case c.cfg.Logger != nil:
		c.cfg.Logger.Warnf("echocache: %s", msg)
	default:
		if p := c.adopted.Load(); p != nil {
			(*p).Warnf("echocache: %s", msg)
			return
		}
		slog.Default().Log(context.Background(), slog.LevelWarn, "echocache: "+msg)
	}
}

func (c *Cache) logInterval() time.Duration {
	if c.cfg.LogInterval == 0 {
		return DefaultLogInterval
	}
	return c.cfg.LogInterval
}

// logLimiter rate-limits one message.
type logLimiter struct {
	last       atomic.Int64 // unix nanos of the last line; 0: none yet
	suppressed atomic.Int64 // lines dropped since then
}

func (c *Cache) limiter(format string) *logLimiter {
	if v, ok := c.logLimits.Load(format); ok {
		return v.(*logLimiter)
	}
	v, _ := c.logLimits.LoadOrStore(format, new(logLimiter))
	return v.(*logLimiter)
}

// allow reports whether a line may be written at now, and how many lines
// were dropped before it.
func (l *logLimiter) allow(now int64, interval time.Duration) (suppressed int64, ok bool) {
	last := l.last.Load()
	if last != 0 && now-last < int64(interval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return 0, false
	}
	return l.suppressed.Swap(0), true
}

var noCacheWarned atomic.Bool

// WarnNoCache logs, once per process, that a handler asked for the Cache
// of a request that did not go through a WithCache middleware: the typed
// API treats the nil *Cache it got as an empty cache, so nothing is cached
// and nothing else would say why. use is the middleware call to add
// ("e.Use(echocache.WithCache(cache))"). It logs through slog.Default(),
// since there is no cache whose logger it could use.
func WarnNoCache(use string) {
	if noCacheWarned.CompareAndSwap(false, true) {
		slog.Default().Warn("echocache: FromContext found no Cache in the request: add " + use +
			" before the routes that use it; until then every Get misses and nothing is stored (logged once)")
	}
}

// ResetWarnNoCache makes the next WarnNoCache log again (tests).
func ResetWarnNoCache() { noCacheWarned.Store(false) }

// The keys the WithCache middleware of Echo v4 (echocache) and of Echo v5
// (echocache/echov5) store the Cache under, spelled like import paths so
// that they cannot clash with an application's own keys. pongotag's
// renderers read them directly: a request without a Cache is normal there
// (the renderer has its own), and not worth WarnNoCache's line.
const (
	CacheContextKey   = "github.com/echocache/echocache.Cache"
	CacheContextKeyV5 = "github.com/echocache/echocache/echocache/echov5.Cache"
)

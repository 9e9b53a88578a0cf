package core

import (
	"fmt"
	"time"
)

// Logger receives the cache's warnings (echocache.Logger).
type Logger interface {
	Warnf(format string, args ...any)
}

// AdoptLogger gives the cache a logger to use when Config.Logger is nil
// and it has none yet. Middleware and the renderer call it with the Echo
// instance's logger.
func (c *Cache) AdoptLogger(l Logger) {
	if l == nil || c.cfg.Logger != nil || c.echoLogger.Load() != nil {
		return
	}
	p := new(Logger) // allocated only here, not on every call
	*p = l
	c.echoLogger.CompareAndSwap(nil, p)
}

// Logf logs a warning through the cache's logger, at most one line per
// LogInterval, prefixed "echocache: ". Every part of the cache (and
// pongotag) logs through it, so that all of a cache's warnings go to one
// place.
func (c *Cache) Logf(format string, args ...any) {
	l := c.cfg.Logger
	if l == nil {
		if p := c.echoLogger.Load(); p != nil {
			l = *p
		}
	}
	if l == nil {
		return
	}
	interval := c.cfg.LogInterval
	if interval == 0 {
		interval = DefaultLogInterval
	}
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if last != 0 && now-last < int64(interval) || !c.lastLog.CompareAndSwap(last, now) {
		c.suppressed.Add(1)
		return
	}
	msg := fmt.Sprintf(format, args...)
	if n := c.suppressed.Swap(0); n > 0 {
		msg += fmt.Sprintf(" (%d similar messages suppressed)", n)
	}
	l.Warnf("echocache: %s", msg)
}

// HasLogger reports whether c has a logger already: Config.Logger or one
// adopted. Middleware checks it on every request before looking for the
// Echo instance's logger.
func (c *Cache) HasLogger() bool { return c.cfg.Logger != nil || c.echoLogger.Load() != nil }

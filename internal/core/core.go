// Package core is the state behind an echocache.Cache and the plumbing
// every part of echocache is built on: the store reference, the guarded
// store calls (timeout, circuit breaker, failed-write bookkeeping), the
// rate-limited logger, the statistics, the cross-process lock and the
// fragment calls of the template tag.
//
// echocache.Cache is defined as core.Cache (type Cache core.Cache), so the
// packages of this module that need the plumbing (pongotag, the framework
// adapters) convert a *echocache.Cache with (*core.Cache)(c), at no cost,
// while the public API of echocache shows only what a user needs.
//
// Files: core.go (the Cache, Init, per-feature state), calls.go (guarded
// store calls), budget.go (a request's store time), breaker.go (read and
// write health), probe.go (the background probe of an open breaker),
// unsettled.go (failed writes), compress.go (entries compressed in
// networked stores), logger.go, lookup.go (what a lookup came
// to), cachestatus.go (its RFC 9211 header), stats.go, observer.go (the
// metrics hook), lock.go, fragment.go.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/deadline"
	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/stores"
)

// Defaults used when a Config field is zero (echocache documents them).
const (
	DefaultTTL              = 5 * time.Minute
	DefaultStoreTimeout     = 250 * time.Millisecond
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 200 * time.Millisecond
	// MaxBreakerCooldown is the longest BreakerCooldown: a store that
	// comes back is used again within a second of its return, which
	// takes a probe within half a second of it (then a miss stores a
	// page and the next request hits it).
	MaxBreakerCooldown = 500 * time.Millisecond
	DefaultLogInterval = 10 * time.Second
)

// Errors of the guarded calls; echocache exports the first two.
var (
	ErrNoStore          = errors.New("echocache: cache has no store (call Init)")
	ErrStoreUnavailable = errors.New("echocache: store unavailable (circuit breaker open)")

	// ErrBudgetSpent is returned, without calling the store, by the calls
	// of a request whose store budget (WithBudget) is spent. It wraps
	// context.DeadlineExceeded. It is not a store error: it is neither
	// counted nor logged, and never feeds the circuit breakers.
	ErrBudgetSpent = fmt.Errorf("echocache: the request's store time is spent: %w", context.DeadlineExceeded)

	// ErrCallerGone is wrapped, together with the context's own error
	// (context.Canceled or context.DeadlineExceeded), by the error of a
	// call whose caller's context ended before or while it ran: the
	// caller has gone, whatever the store did. A front end that gets it
	// answers nobody, and so runs no handler. It is not a store error.
	ErrCallerGone = errors.New("echocache: the caller's context ended")
)

// Config is echocache.Config as the core keeps it: zero fields mean the
// defaults above.
type Config struct {
	DefaultTTL       time.Duration
	StoreTimeout     time.Duration
	BreakerThreshold int // < 0: no breaker
	BreakerCooldown  time.Duration
	Slog             *slog.Logger // first choice of sink (logger.go)
	Logger           Logger       // second choice
	LogInterval      time.Duration
	Observer         Observer // nil: none
	Codec            any      // the typed API's echocache.Codec, kept for it; nil: its default
	CompressMinSize  int      // 0: DefaultCompressMinSize; < 0: no compression (compress.go)
}

// Cache is the state of an echocache.Cache. It is safe for concurrent
// use; its zero value has the default config and no store.
type Cache struct {
	cfg   Config
	store atomic.Pointer[storeRef]

	logLimits sync.Map                  // format -> *logLimiter (logger.go)
	adopted   atomic.Pointer[Logger]    // the framework's logger (AdoptLogger)
	obs       atomic.Pointer[observers] // nil: nothing observes (observer.go)

	reads, writes breaker     // skip a failing or slow networked store (breaker.go)
	probing       atomic.Bool // a prober runs (probe.go)

	stats     Counters
	bypass    sync.Map      // reason (string) -> *atomic.Uint64
	unsettled unsettledKeys // keys whose failed write could not be undone (unsettled.go)
	extra     sync.Map      // per-feature state (see State)
}

type storeRef struct {
	s         stores.Store
	local     bool            // s lives in the process (internal/inproc)
	timerless bool            // s ends calls by their context's deadline alone (internal/deadline)
	view      inproc.ViewFunc // s's View, when it is local and hands out its own bytes
	near      inproc.NearFunc // s's in-process copies, when it is networked and keeps some (stores.LocalTier)
	watch     inproc.Near     // s's, for Watch and Unchanged (near.go)
	compress  int             // smallest record stored compressed; 0: none (compress.go)
}

// Configure sets c's config. Call it before c is used.
func (c *Cache) Configure(cfg Config) {
	c.cfg = cfg
	c.AddObserver(cfg.Observer)
}

// Codec returns Config.Codec.
func (c *Cache) Codec() any { return c.cfg.Codec }

// Init sets (or replaces) the cache's store. Middleware and functions
// created before Init use the store from then on.
func (c *Cache) Init(store stores.Store) {
	if store == nil {
		c.store.Store(nil)
		return
	}
	in, local := inproc.Lookup(store)
	th := c.cfg.BreakerThreshold
	if th == 0 {
		th = DefaultBreakerThreshold
	}
	slow := c.storeTimeout() / 2
	c.reads.configure(th, slow)
	c.writes.configure(th, slow)
	var near inproc.Near
	if !local {
		near, _ = inproc.LookupNear(store)
	}
	c.store.Store(&storeRef{s: store, local: local, timerless: deadline.Honoured(store), view: in.View, near: near.View, watch: near,
		compress: c.compressMin(local)})
	c.unsettled.reset() // those keys were another store's
}

// Store returns the cache's store, or nil before Init.
func (c *Cache) Store() stores.Store {
	if r := c.store.Load(); r != nil {
		return r.s
	}
	return nil
}

// HasStore reports whether c can be asked at all. A nil *Cache has no
// store.
func (c *Cache) HasStore() bool { return c != nil && c.store.Load() != nil }

// DefaultTTL returns the TTL used when a call gives none.
func (c *Cache) DefaultTTL() time.Duration {
	if c.cfg.DefaultTTL == 0 {
		return DefaultTTL
	}
	return c.cfg.DefaultTTL
}

// TTL resolves a caller's TTL: zero means the cache's default; the result
// is passed to the store, where a negative value means no expiry.
func (c *Cache) TTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return c.DefaultTTL()
	}
	return ttl
}

// SetProbeInterval sets how often an open breaker probes the store past
// the bound that echocache's Config sets on BreakerCooldown. It is for
// tests that hold a breaker open (time.Hour) and probe with ProbeNow; call
// it before the Cache is used.
func (c *Cache) SetProbeInterval(d time.Duration) { c.cfg.BreakerCooldown = d }

// cooldown is how long an open breaker waits between two probes.
func (c *Cache) cooldown() time.Duration {
	if c.cfg.BreakerCooldown == 0 {
		return DefaultBreakerCooldown
	}
	return c.cfg.BreakerCooldown
}

// StoreTimeout returns Config.StoreTimeout, or its default: the bound of
// one store call to a networked store.
func (c *Cache) StoreTimeout() time.Duration { return c.storeTimeout() }

func (c *Cache) storeTimeout() time.Duration {
	if c.cfg.StoreTimeout == 0 {
		return DefaultStoreTimeout
	}
	return c.cfg.StoreTimeout
}

// Verifies reports whether records read from the store must have their
// checksums checked: bytes from an in-process store never left the process.
func (c *Cache) Verifies() bool {
	r := c.store.Load()
	return r == nil || !r.local
}

// Viewer returns the store's View when it is in-process and can hand out
// its own bytes, or nil. (Found once, by Init.)
func (c *Cache) Viewer() inproc.ViewFunc {
	if r := c.store.Load(); r != nil {
		return r.view
	}
	return nil
}

// State returns per-cache state for a feature, created once by mk.
func State[T any](c *Cache, key string, mk func() *T) *T {
	if v, ok := c.extra.Load(key); ok {
		return v.(*T)
	}
	v, _ := c.extra.LoadOrStore(key, mk())
	return v.(*T)
}

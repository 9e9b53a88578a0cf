// Package echocache caches Echo routes, groups and handlers, plain
// functions (memoize) and arbitrary values, on any [stores.Store].
//
// A [Cache] is a store plus defaults: TTL, per-call store timeout, circuit
// breaker, logger and statistics. It can be created before its store is
// known and initialised later with [Cache.Init], the way Flask-Cache's
// init_app works:
//
//	var Cache = echocache.New(nil) // in package cache
//	...
//	cache.Cache.Init(store)        // in main
//
// Until Init, every cached route and function runs uncached.
//
// Every store call is fail-open: a store error or timeout is logged
// (rate-limited), counted in [Stats], and the request or function runs as
// if nothing were cached. A circuit breaker skips a store that keeps
// failing until it answers again.
package echocache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/stores"
)

// Defaults used when a Config field is zero.
const (
	// DefaultTTL is Flask-Cache's CACHE_DEFAULT_TIMEOUT: 5 minutes.
	DefaultTTL = 5 * time.Minute
	// DefaultStoreTimeout bounds each call to a networked store.
	DefaultStoreTimeout = 250 * time.Millisecond
	// DefaultBreakerThreshold is the number of consecutive store failures
	// that opens the circuit breaker.
	DefaultBreakerThreshold = 5
	// DefaultBreakerCooldown is how long an open breaker skips the store
	// before it lets one call through to probe it.
	DefaultBreakerCooldown = 2 * time.Second
	// DefaultLogInterval is the shortest time between two log lines about
	// store errors.
	DefaultLogInterval = 10 * time.Second
)

// ErrNoStore is returned by strict calls on a Cache that has no store yet.
var ErrNoStore = errors.New("echocache: cache has no store (call Init)")

// ErrStoreUnavailable is returned by strict calls while the circuit breaker
// is open.
var ErrStoreUnavailable = errors.New("echocache: store unavailable (circuit breaker open)")

// Logger receives the cache's warnings. echo.Logger satisfies it.
type Logger interface {
	Warnf(format string, args ...any)
}

// LoggerFunc adapts a printf-style function to Logger.
type LoggerFunc func(format string, args ...any)

// Warnf calls f.
func (f LoggerFunc) Warnf(format string, args ...any) { f(format, args...) }

// Config holds a Cache's defaults. Every field is optional; the zero value of
// each means the default its comment names.
type Config struct {
	// DefaultTTL is the lifetime of entries when a call gives no TTL.
	// Optional. Default value DefaultTTL (5 minutes). Use stores.NoExpiry
	// for entries that never expire.
	DefaultTTL time.Duration

	// StoreTimeout bounds every call to a networked store; on timeout the
	// call fails open. Stores in the process (null, memory) are called
	// without a timeout.
	// Optional. Default value DefaultStoreTimeout (250ms).
	StoreTimeout time.Duration

	// BreakerThreshold is the number of consecutive store failures after
	// which the store is skipped for BreakerCooldown.
	// Optional. Default value DefaultBreakerThreshold (5). A negative value
	// disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how long an open breaker skips the store.
	// Optional. Default value DefaultBreakerCooldown (2s).
	BreakerCooldown time.Duration

	// Logger receives store errors, at most one line per LogInterval.
	// Optional. Default: the Echo instance's logger when the cache is used
	// by middleware, otherwise nothing is logged.
	Logger Logger

	// LogInterval is the shortest time between two log lines.
	// Optional. Default value DefaultLogInterval (10s).
	LogInterval time.Duration

	// Codec encodes values of the typed API (Get, Set, Memoize...).
	// Optional. Default value DefaultCodec.
	Codec Codec
}

// Cache is a store with defaults, shared by route middleware, memoized
// functions, the typed API and the pongotag template tag. It is safe for
// concurrent use. The zero value is a Cache with default config and no
// store; call Init before use.
type Cache struct {
	cfg   Config
	store atomic.Pointer[storeRef]

	echoLogger atomic.Pointer[Logger] // fallback logger found by middleware
	lastLog    atomic.Int64           // unix nanos of the last log line
	suppressed atomic.Int64           // log lines dropped since then

	brk breaker // skips a failing networked store (breaker.go)

	stats     counters
	unsettled unsettledKeys // keys whose failed write could not be undone (failedwrite.go)
	extra     sync.Map      // per-feature state (see state)
}

type storeRef struct {
	s     stores.Store
	local bool            // s lives in the process (internal/inproc)
	view  inproc.ViewFunc // s's View, when it is local and hands out its own bytes
	done  func(error)     // completion of calls to a local store, made once
}

// New returns a Cache over store with the default config. store may be nil;
// call Init later.
func New(store stores.Store) *Cache {
	c := &Cache{}
	if store != nil {
		c.Init(store)
	}
	return c
}

// NewWithConfig returns a Cache over store (which may be nil) with cfg. It
// reports invalid config values.
func NewWithConfig(store stores.Store, cfg Config) (*Cache, error) {
	if cfg.DefaultTTL < 0 && cfg.DefaultTTL != stores.NoExpiry {
		return nil, fmt.Errorf("echocache: Config.DefaultTTL %v is negative (use stores.NoExpiry for no expiry)", cfg.DefaultTTL)
	}
	if cfg.StoreTimeout < 0 {
		return nil, fmt.Errorf("echocache: Config.StoreTimeout %v is negative", cfg.StoreTimeout)
	}
	if cfg.BreakerCooldown < 0 {
		return nil, fmt.Errorf("echocache: Config.BreakerCooldown %v is negative", cfg.BreakerCooldown)
	}
	if cfg.LogInterval < 0 {
		return nil, fmt.Errorf("echocache: Config.LogInterval %v is negative", cfg.LogInterval)
	}
	c := &Cache{cfg: cfg}
	if store != nil {
		c.Init(store)
	}
	return c, nil
}

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
	cool := c.cfg.BreakerCooldown
	if cool == 0 {
		cool = DefaultBreakerCooldown
	}
	c.brk.configure(th, cool)
	c.store.Store(&storeRef{s: store, local: local, view: in.View, done: c.localDone})
	c.unsettled.reset() // those keys were another store's
}

// Store returns the cache's store, or nil before Init.
func (c *Cache) Store() stores.Store {
	if r := c.store.Load(); r != nil {
		return r.s
	}
	return nil
}

// DefaultTTL returns the TTL used when a call gives none.
func (c *Cache) DefaultTTL() time.Duration {
	if c.cfg.DefaultTTL == 0 {
		return DefaultTTL
	}
	return c.cfg.DefaultTTL
}

// ttl resolves a caller's TTL: zero means the cache's default; the result is
// passed to the store, where a negative value means no expiry.
func (c *Cache) ttl(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return c.DefaultTTL()
	}
	return ttl
}

func (c *Cache) storeTimeout() time.Duration {
	if c.cfg.StoreTimeout == 0 {
		return DefaultStoreTimeout
	}
	return c.cfg.StoreTimeout
}

// SetEchoLogger gives the cache a logger to use when Config.Logger is nil
// and it has none yet. Middleware calls it with the Echo instance's logger.
func (c *Cache) SetEchoLogger(l Logger) {
	if l == nil || c.cfg.Logger != nil || c.echoLogger.Load() != nil {
		return
	}
	p := new(Logger) // allocated only here, not on every call
	*p = l
	c.echoLogger.CompareAndSwap(nil, p)
}

// logf logs a store problem, at most once per LogInterval.
func (c *Cache) logf(format string, args ...any) {
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

// acquire returns the store and a context for one call, or an error when
// there is no store or the breaker is open. done must be called with the
// call's error.
func (c *Cache) acquire(ctx context.Context) (stores.Store, context.Context, func(error), error) {
	r := c.store.Load()
	if r == nil {
		return nil, ctx, nopDone, ErrNoStore
	}
	if r.local {
		return r.s, ctx, r.done, nil
	}
	ok, probe := c.brk.allow(time.Now().UnixNano())
	if !ok {
		c.stats.storeErrors.Add(1)
		return nil, ctx, nopDone, ErrStoreUnavailable
	}
	tctx, cancel := context.WithTimeout(ctx, c.storeTimeout())
	return r.s, tctx, func(err error) {
		cancel()
		if probe {
			c.brk.endProbe()
		}
		c.record(ctx, err)
	}, nil
}

func nopDone(error) {}

// localDone counts and logs the failures of an in-process store (ErrClosed,
// say; refusals such as ErrTooLarge are the caller's to count). Such a
// store has no timeout and no breaker: it answers or fails at once.
func (c *Cache) localDone(err error) {
	if refused(err) {
		c.countRefusal(err)
		return
	}
	if err != nil && !errors.Is(err, stores.ErrNotFound) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		c.storeError(err)
	}
}

// refused reports whether err is the store refusing one value (too large
// for it, or not a counter) or a call it has no way to make (Incr on a
// store without stores.Incrementer) rather than failing: the store answered, so
// such an error says nothing about the store's health and never feeds the
// circuit breaker.
func refused(err error) bool {
	return errors.Is(err, stores.ErrTooLarge) || errors.Is(err, stores.ErrNotInteger) ||
		errors.Is(err, errors.ErrUnsupported)
}

// countRefusal counts a value the store refused as too large as the bypass
// BypassTooLarge. (ErrNotInteger goes back to the Incr caller, whose
// question it answers.)
func (c *Cache) countRefusal(err error) {
	if errors.Is(err, stores.ErrTooLarge) {
		c.countBypass(BypassTooLarge)
	}
}

// record feeds the breaker and the stats with one call's outcome.
func (c *Cache) record(parent context.Context, err error) {
	if refused(err) {
		c.countRefusal(err)
		err = nil
	}
	if err == nil || errors.Is(err, stores.ErrNotFound) {
		if c.brk.success() {
			c.logf("store answers again; circuit breaker closed")
		}
		c.drainUnsettled()
		return
	}
	if parent.Err() != nil {
		return // the caller gave up; not the store's fault
	}
	c.storeError(err)
	if errors.Is(err, stores.ErrNodeDown) {
		// One server of a store spread over several failed: its keys miss,
		// the other servers' keys are served. The store's own per-server
		// breaker skips it; ours stays as it is for the whole store.
		return
	}
	if n := c.brk.failure(time.Now().UnixNano()); n > 0 {
		c.logf("store failed %d times in a row; skipping it for %v: %v", n, c.brk.cooldown, err)
	}
}

// storeError counts and logs a store error.
func (c *Cache) storeError(err error) {
	c.stats.storeErrors.Add(1)
	c.logf("store error (serving uncached): %v", err)
}

// The guarded store calls below are what every feature uses. They apply the
// store timeout and the breaker. A miss is stores.ErrNotFound; any other
// error means the store could not answer. The writes undo what they can
// when they fail, and the reads treat the keys they could not undo as
// misses (see failedwrite.go).

func (c *Cache) storeGet(ctx context.Context, key string) ([]byte, error) {
	if c.unsettled.n.Load() != 0 && c.unsettledRead(ctx, key) {
		return nil, stores.ErrNotFound
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.Get(sctx, key)
	done(err)
	return v, err
}

// verifies reports whether records read from the store must have their
// checksums checked: bytes from an in-process store never left the process.
func (c *Cache) verifies() bool {
	r := c.store.Load()
	return r == nil || !r.local
}

// viewer returns the store's View when it is in-process and can hand out
// its own bytes, or nil. (Found once, by Init.)
func (c *Cache) viewer() inproc.ViewFunc {
	if r := c.store.Load(); r != nil {
		return r.view
	}
	return nil
}

// storeView is storeGet for callers that never modify the value: with a
// viewer (see Cache.viewer) it reads the store's own bytes instead of a
// copy, with the value's memo (nil without a viewer, or when the store
// keeps none), and completes the call like the other local calls.
func (c *Cache) storeView(ctx context.Context, viewer inproc.ViewFunc, key string) ([]byte, *inproc.Memo, error) {
	if viewer == nil {
		v, err := c.storeGet(ctx, key)
		return v, nil, err
	}
	if c.unsettled.n.Load() != 0 && c.unsettledRead(ctx, key) {
		return nil, nil, stores.ErrNotFound
	}
	v, memo, err := viewer(ctx, key)
	if err != nil {
		c.localDone(err)
	}
	return v, memo, err
}

func (c *Cache) storeGetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	var skip []string
	if c.unsettled.n.Load() != 0 {
		live := make([]string, 0, len(keys))
		for _, k := range keys {
			if c.unsettled.has(k) {
				skip = append(skip, k)
			} else {
				live = append(live, k)
			}
		}
		if len(skip) > 0 {
			if c.removeKeys(ctx, skip) == nil {
				c.unsettled.settle(skip...)
			}
			keys = live
		}
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	v, err := stores.GetMany(sctx, s, keys)
	done(err)
	return v, err // with stores.ErrNodeDown, v holds the healthy servers' values
}

func (c *Cache) storeSet(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s, sctx, done, err := c.acquire(ctx)
	if err == nil {
		err = s.Set(sctx, key, value, ttl)
		done(err)
	}
	if err != nil {
		c.writeFailed(ctx, err, []string{key})
		return err
	}
	c.unsettled.settle(key)
	return nil
}

func (c *Cache) storeSetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	s, sctx, done, err := c.acquire(ctx)
	if err == nil {
		err = stores.SetMany(sctx, s, items, ttl)
		done(err)
	}
	if err != nil || c.unsettled.n.Load() != 0 {
		keys := make([]string, 0, len(items))
		for k := range items {
			keys = append(keys, k)
		}
		if err != nil {
			c.writeFailed(ctx, err, keys)
			return err
		}
		c.unsettled.settle(keys...)
	}
	return nil
}

func (c *Cache) storeAdd(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := c.settleBefore(ctx, key); err != nil {
		return false, err
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return false, err
	}
	ok, err := s.Add(sctx, key, value, ttl)
	done(err)
	return ok, err
}

func (c *Cache) storeDelete(ctx context.Context, keys ...string) error {
	s, sctx, done, err := c.acquire(ctx)
	if err == nil {
		if len(keys) == 1 {
			err = s.Delete(sctx, keys[0])
		} else {
			err = stores.DeleteMany(sctx, s, keys)
		}
		done(err)
	}
	if err != nil {
		c.writeFailed(ctx, err, keys)
		return err
	}
	c.unsettled.settle(keys...)
	return nil
}

func (c *Cache) storeIncr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := c.settleBefore(ctx, key); err != nil {
		return 0, err
	}
	s, sctx, done, err := c.acquire(ctx)
	if err != nil {
		return 0, err
	}
	n, err := stores.Incr(sctx, s, key, delta)
	done(err)
	return n, err
}

// Clear removes every entry of the cache's store namespace: cached pages,
// memoized results, values and fragments. Unlike the other calls it returns
// the store's error, since a script that clears the cache wants to know.
func (c *Cache) Clear(ctx context.Context) error {
	r := c.store.Load()
	if r == nil {
		return ErrNoStore
	}
	if err := r.s.Clear(ctx); err != nil {
		return err
	}
	c.unsettled.reset() // nothing is left to remove
	return nil
}

// state returns per-cache state for a feature, created once by mk.
func state[T any](c *Cache, key string, mk func() *T) *T {
	if v, ok := c.extra.Load(key); ok {
		return v.(*T)
	}
	v, _ := c.extra.LoadOrStore(key, mk())
	return v.(*T)
}

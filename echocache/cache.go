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
// (rate-limited, to slog.Default() unless [Config] names a logger), counted
// in [Stats], and the request or function runs as if nothing were cached. A
// circuit breaker skips a store that keeps failing, or that keeps
// answering slowly, and the Cache probes it in the background until it
// answers again. Reads and writes have a breaker each, so writes that fail
// (a full disk) never stop reads that succeed. [Config.Observer] is a hook
// for metrics and tracing.
//
// The route middleware here is for Echo v4; echocache/echov5 serves Echo v5
// and echocache/httpcache any net/http router, with the same rules, on the
// same Cache.
package echocache

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/stores"
)

// Defaults used when a Config field is zero.
const (
	// DefaultTTL is Flask-Cache's CACHE_DEFAULT_TIMEOUT: 5 minutes.
	DefaultTTL = core.DefaultTTL
	// DefaultStoreTimeout bounds each call to a networked store, and the
	// store calls of one cached request together.
	DefaultStoreTimeout = core.DefaultStoreTimeout
	// DefaultBreakerThreshold is the number of consecutive store failures
	// that opens the circuit breaker.
	DefaultBreakerThreshold = core.DefaultBreakerThreshold
	// DefaultBreakerCooldown is how often the Cache probes a store that
	// an open breaker skips.
	DefaultBreakerCooldown = core.DefaultBreakerCooldown
	// MaxBreakerCooldown is the longest BreakerCooldown NewWithConfig
	// accepts (500ms): a store that comes back must be used again within
	// a second of its return, whatever the configuration.
	MaxBreakerCooldown = core.MaxBreakerCooldown
	// DefaultLogInterval is the shortest time between two log lines of
	// one message (store errors, say).
	DefaultLogInterval = core.DefaultLogInterval
	// DefaultCompressMinSize is the smallest entry compressed in a
	// networked store: 4 KiB (see Config.CompressMinSize).
	DefaultCompressMinSize = core.DefaultCompressMinSize
)

// MaxCompressSize is the largest entry compressed, 32 MiB (about the
// memcached store's default MaxValueSize), and the most a compressed entry
// may decode to: one that says it holds more is refused before it is
// decoded, as a corrupt entry.
const MaxCompressSize = core.MaxCompressSize

// ErrNoStore is returned by strict calls on a Cache that has no store yet.
var ErrNoStore = core.ErrNoStore

// ErrStoreUnavailable is returned by strict calls while the circuit breaker
// is open.
var ErrStoreUnavailable = core.ErrStoreUnavailable

// Logger receives the cache's warnings as printf-style lines, through
// Warnf. echo.Logger satisfies it. [Config.Slog] takes a *slog.Logger
// instead.
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
	// call fails open. The store calls a request makes through a cached
	// route (its page, variant and tag lookups, the lock of a miss and
	// the wait for another process's page, and the handler's own calls
	// with the request's context) share one StoreTimeout between them: a
	// request waits on the store for one StoreTimeout at most, in total,
	// and the calls made once it is spent fail at once. The write of a
	// missed page follows its response, with a StoreTimeout of its own
	// (see MaxPendingWrites). Stores in the process (null, memory) are
	// called without a timeout.
	// Optional. Default value DefaultStoreTimeout (250ms).
	StoreTimeout time.Duration

	// BreakerThreshold is the number of consecutive failures of reads, or
	// of writes, after which the circuit breaker skips them: a failing
	// read skips every call, a failing write only writes. A store whose
	// calls mostly take over half the StoreTimeout for two seconds is
	// skipped the same way. While skipped, the store is probed in the
	// background every BreakerCooldown, and used again as soon as a
	// probe is answered within half the StoreTimeout.
	// Optional. Default value DefaultBreakerThreshold (5). A negative value
	// disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how often the Cache probes a store that an open
	// breaker skips (a Get, or for writes a Set, of the key "h:probe"
	// that expires after a second). A store that comes back is used again
	// within about one BreakerCooldown, whatever the traffic. Unlike the
	// open period of breakers that let requests through to test a
	// server (sony/gobreaker's Settings.Timeout, 60 s), it only spaces
	// one small background call per Cache, and it is bounded so that a
	// store that comes back is used again within a second: NewWithConfig
	// refuses a value over MaxBreakerCooldown (500ms).
	// Optional. Default value DefaultBreakerCooldown (200ms).
	BreakerCooldown time.Duration

	// Slog receives the cache's log lines at slog.LevelWarn: store errors
	// and timeouts, the circuit breaker opening and closing, corrupt
	// entries, failed background refreshes, writes that could not be
	// undone. Each message is rate-limited on its own (LogInterval).
	// Optional. Default value nil: Logger when it is set, else the
	// framework's logger that the route middleware, WithCache or the
	// renderer sees, if that logger shows warnings, else slog.Default()
	// (read at each line, so slog.SetDefault applies), which prints WARN
	// with the standard library's defaults. echo.New() sets Echo's logger
	// to ERROR, which hides warnings, so with Echo's defaults the lines go
	// to slog.Default().
	Slog *slog.Logger

	// Logger receives the cache's log lines through Warnf when Slog is
	// nil. Note that echo.New() sets e.Logger's level to ERROR, which drops
	// them: lower it (e.Logger.SetLevel(log.WARN)) if you pass e.Logger.
	// Optional. Default value nil (see Slog).
	Logger Logger

	// LogInterval is the shortest time between two lines of one message
	// (store errors, say); the next line says how many were suppressed.
	// Optional. Default value DefaultLogInterval (10s).
	LogInterval time.Duration

	// Observer is told of every lookup and every store call, for metrics
	// and tracing (see Observer; the Prometheus collector of
	// github.com/echocache/echocache/metrics/prometheus adds itself).
	// Optional. Default value nil: nothing but Stats counts.
	Observer Observer

	// Codec encodes values of the typed API (Get, Set, Memoize...).
	// Optional. Default value DefaultCodec.
	Codec Codec

	// CompressMinSize is the size, in bytes, from which entries written
	// to a networked store (redis, memcached, file) are compressed, with
	// S2 (github.com/klauspost/compress/s2): pages, values, memoized
	// results and fragments alike. An entry that S2 would not shrink by
	// an eighth, and one over MaxCompressSize, is stored as it is. Every
	// read takes compressed and plain entries alike, so entries written
	// before compression was turned on, or by a process with another
	// setting, stay readable; a compressed entry that is damaged, forged,
	// or would decode to more than MaxCompressSize is a miss, logged and
	// deleted like every corrupt entry. Entries in a store in the process
	// (memory, null) are never compressed: that would cost CPU on every
	// hit and save nothing that leaves the process.
	// Optional. Default value DefaultCompressMinSize (4 KiB). A negative
	// value turns compression off.
	CompressMinSize int
}

// Cache is a store with defaults, shared by route middleware, memoized
// functions, the typed API and the pongotag template tag. It is safe for
// concurrent use. The zero value is a Cache with default config and no
// store; call Init before use.
//
// Its state and the store calls every feature makes (timeout, circuit
// breaker, failed-write bookkeeping, logging, statistics) live in
// internal/core, where the other packages of this module reach them.
type Cache core.Cache

// core returns c's state and plumbing.
func (c *Cache) core() *core.Cache { return (*core.Cache)(c) }

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
	if cfg.BreakerCooldown > MaxBreakerCooldown {
		return nil, fmt.Errorf("echocache: Config.BreakerCooldown %v is over MaxBreakerCooldown (%v): a store that comes back must be used again within a second", cfg.BreakerCooldown, MaxBreakerCooldown)
	}
	if cfg.LogInterval < 0 {
		return nil, fmt.Errorf("echocache: Config.LogInterval %v is negative", cfg.LogInterval)
	}
	c := &Cache{}
	cc := core.Config{
		DefaultTTL:       cfg.DefaultTTL,
		StoreTimeout:     cfg.StoreTimeout,
		BreakerThreshold: cfg.BreakerThreshold,
		BreakerCooldown:  cfg.BreakerCooldown,
		LogInterval:      cfg.LogInterval,
		CompressMinSize:  cfg.CompressMinSize,
	}
	if cfg.Logger != nil {
		cc.Logger = cfg.Logger
	}
	cc.Slog = cfg.Slog
	cc.Observer = cfg.Observer
	if cfg.Codec != nil {
		cc.Codec = cfg.Codec
	}
	c.core().Configure(cc)
	if store != nil {
		c.Init(store)
	}
	return c, nil
}

// Init sets (or replaces) the cache's store. Middleware and functions
// created before Init use the store from then on.
func (c *Cache) Init(store stores.Store) { c.core().Init(store) }

// Store returns the cache's store, or nil before Init.
func (c *Cache) Store() stores.Store { return c.core().Store() }

// DefaultTTL returns the TTL used when a call gives none.
func (c *Cache) DefaultTTL() time.Duration { return c.core().DefaultTTL() }

// Clear removes every entry of the cache's store namespace: cached pages,
// memoized results, values and fragments. Unlike the other calls it returns
// the store's error, since a script that clears the cache wants to know.
// Like DeletePage, it waits for the page writes under way and keeps this
// process from storing the responses being computed.
func (c *Cache) Clear(ctx context.Context) error {
	return pagecache.Invalidate(ctx, c.core(), func() error { return c.core().Clear(ctx) })
}

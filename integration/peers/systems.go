package peers

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/darkweak/souin/configurationtypes"
	souin "github.com/darkweak/souin/pkg/middleware"
	"github.com/gofiber/fiber/v2"
	fibercache "github.com/gofiber/fiber/v2/middleware/cache"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	vshttpcache "github.com/victorspringer/http-cache"
	vsmemory "github.com/victorspringer/http-cache/adapter/memory"

	echohttpcache "github.com/SporkHubr/echo-http-cache"
	ehcmemory "github.com/SporkHubr/echo-http-cache/adapter/memory"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// Env is what the systems on shared stores need from outside.
type Env struct {
	// RedisURL is a redis:// URL (ECHOCACHE_REDIS_URL), for the rows on
	// redis. Empty leaves them out.
	RedisURL string
	// MemcachedAddr is a memcached host:port (ECHOCACHE_MEMCACHED_ADDR),
	// for the rows on memcached. Empty leaves them out.
	MemcachedAddr string
	// Prefix starts every key a system writes to a shared store, so that
	// processes of one run (and runs) never read each other's pages. At
	// most 100 bytes of letters, digits, '-', '_' and ':'.
	Prefix string
}

// Has reports whether env names the servers store needs.
func (env Env) Has(store string) bool {
	switch store {
	case StoreRedis:
		return env.RedisURL != ""
	case StoreMemcached:
		return env.MemcachedAddr != ""
	}
	return true
}

// The stores a system keeps pages in.
const (
	StoreNone      = "none"
	StoreMemory    = "memory"
	StoreRedis     = "redis"
	StoreMemcached = "memcached"
)

// TTL is how long every cache keeps the page: longer than any run.
const TTL = time.Hour

// System is one way of serving the page: uncached, through a cache, or
// straight from a store's client.
type System struct {
	// Key names the system on the command line.
	Key string
	// Module is the module path of what is measured: the row's name.
	Module string
	// What says what the row measures.
	What string
	// Store is where pages are kept (StoreNone: the handler runs every time).
	Store string
	// Limit is the Key of the system whose throughput this one is held to:
	// the static handler of its server, or the bare client of its store.
	// Empty for the limits themselves.
	Limit string
	// Builds is how often a check expects the handler to have built the
	// page after n requests.
	Builds func(n int) int

	start func(o *origin, env Env) (server, error)
}

func once(int) int        { return 1 }
func everyTime(n int) int { return n }

// Systems lists every row, limits first. The Echo ones serve through
// net/http; the fiber ones through fasthttp.
var Systems = []System{
	{Key: "echo", Module: "github.com/labstack/echo/v4", What: "static Echo handler (the limit)",
		Store: StoreNone, Builds: everyTime, start: startEchoStatic},
	{Key: "echo-hit-headers", Module: "github.com/labstack/echo/v4", What: "static Echo handler that also writes the four headers of a hit (Age, Cache-Status, ETag, X-Cache)",
		Store: StoreNone, Limit: "echo", Builds: everyTime, start: startEchoHitHeaders},
	{Key: "echocache-memory", Module: "github.com/echocache/echocache", What: "route cache, memory store",
		Store: StoreMemory, Limit: "echo", Builds: once, start: echocacheOn(StoreMemory, openMemory)},
	{Key: "go-redis", Module: "github.com/redis/go-redis/v9", What: "handler doing a bare GET (the redis limit)",
		Store: StoreRedis, Builds: once, start: startBareRedis},
	{Key: "echocache-redis", Module: "github.com/echocache/echocache", What: "route cache, redis store",
		Store: StoreRedis, Limit: "go-redis", Builds: once, start: echocacheOn(StoreRedis, openRedis)},
	{Key: "gomemcache", Module: "github.com/bradfitz/gomemcache", What: "handler doing a bare Get (the memcached limit)",
		Store: StoreMemcached, Builds: once, start: startBareMemcached},
	{Key: "echocache-memcached", Module: "github.com/echocache/echocache", What: "route cache, memcached store",
		Store: StoreMemcached, Limit: "gomemcache", Builds: once, start: echocacheOn(StoreMemcached, openMemcached)},
	{Key: "echocache-redis-local", Module: "github.com/echocache/echocache", What: "route cache, redis store behind a local tier (local=32MiB)",
		Store: StoreRedis, Limit: "echo", Builds: once, start: echocacheOn(StoreRedis, openLocal(openRedis))},
	{Key: "echocache-memcached-local", Module: "github.com/echocache/echocache", What: "route cache, memcached store behind a local tier (local=32MiB)",
		Store: StoreMemcached, Limit: "echo", Builds: once, start: echocacheOn(StoreMemcached, openLocal(openMemcached))},
	{Key: "echo-http-cache", Module: "github.com/SporkHubr/echo-http-cache", What: "route middleware, memory adapter (LRU)",
		Store: StoreMemory, Limit: "echo", Builds: once, start: startEchoHTTPCache},
	{Key: "http-cache", Module: "github.com/victorspringer/http-cache", What: "net/http middleware via echo.WrapMiddleware, memory adapter (LRU)",
		Store: StoreMemory, Limit: "echo", Builds: once, start: startHTTPCache},
	{Key: "souin", Module: "github.com/darkweak/souin", What: "core pkg/middleware in an Echo middleware, default storage",
		Store: StoreMemory, Limit: "echo", Builds: once, start: startSouin},
	{Key: "fiber", Module: "github.com/gofiber/fiber/v2", What: "static fiber handler (fasthttp, a different server)",
		Store: StoreNone, Builds: everyTime, start: startFiberStatic},
	{Key: "fiber-cache", Module: "github.com/gofiber/fiber/v2/middleware/cache", What: "fiber's cache middleware (fasthttp, a different server)",
		Store: StoreMemory, Limit: "fiber", Builds: once, start: startFiberCache},
}

// Lookup returns the system with key k.
func Lookup(k string) (System, bool) {
	for _, s := range Systems {
		if s.Key == k {
			return s, true
		}
	}
	return System{}, false
}

func (o *origin) echoHandler(c echo.Context) error {
	return c.Blob(http.StatusOK, contentType, o.build())
}

func (o *origin) runsHandler(c echo.Context) error {
	return c.String(http.StatusOK, fmt.Sprint(o.runs.Load()))
}

// newEcho serves the page through mw (applied once, at registration: echo
// v4 would otherwise build the route's middleware chain on every request)
// and the uncached run count.
func newEcho(h echo.HandlerFunc, closers ...func() error) *echoServer {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET(PagePath, h)
	return &echoServer{e: e, closers: closers}
}

func startEchoStatic(o *origin, _ Env) (server, error) {
	s := newEcho(o.echoHandler)
	s.e.GET(RunsPath, o.runsHandler)
	return s, nil
}

// startEchoHitHeaders is the static handler writing, besides the page,
// the headers echocache's route cache adds to a hit by default, with
// values of the same lengths: what a hit costs before the cache does
// anything (each header is a map entry net/http clones, sorts and writes).
func startEchoHitHeaders(o *origin, _ Env) (server, error) {
	s := newEcho(func(c echo.Context) error {
		h := c.Response().Header()
		h["Age"] = []string{"0"}
		h["Cache-Status"] = []string{"echocache; hit; ttl=3599"}
		h["Etag"] = []string{`"92s2dSmPZLrO-2Io8yJYFQ"`}
		h["X-Cache"] = []string{"HIT"}
		return o.echoHandler(c)
	})
	s.e.GET(RunsPath, o.runsHandler)
	return s, nil
}

// echocacheOn serves the page through echocache's route cache on the store
// open returns (name is its kind, for the log).
func echocacheOn(name string, open func(env Env) (stores.Store, error)) func(*origin, Env) (server, error) {
	return func(o *origin, env Env) (server, error) {
		store, err := open(env)
		if err != nil {
			return nil, err
		}
		if p, ok := store.(stores.Pinger); ok {
			if err := p.Ping(context.Background()); err != nil {
				store.Close()
				return nil, err
			}
		}
		// Store errors go to stderr: each one sends a request to the handler
		// (fail-open). StoreTimeout is longer than its default (250ms) so
		// that a stall of the loaded machine does not: a hit costs the same
		// whatever the timeout.
		logger := log.New(os.Stderr, "echocache on "+name+": ", log.LstdFlags)
		// Compression is off: the bare clients' rows read the page's bytes
		// as they are, and the generated page (repeated text) would shrink
		// far more than real pages do.
		c, err := echocache.NewWithConfig(store, echocache.Config{
			Logger:          echocache.LoggerFunc(logger.Printf),
			StoreTimeout:    5 * time.Second,
			CompressMinSize: -1,
		})
		if err != nil {
			store.Close()
			return nil, err
		}
		s := newEcho(c.Cached(TTL)(o.echoHandler), store.Close)
		s.e.GET(RunsPath, o.runsHandler)
		return s, nil
	}
}

func openMemory(Env) (stores.Store, error) { return stores.NewMemory(stores.MemoryConfig{}) }

func openRedis(env Env) (stores.Store, error) {
	return stores.Open(context.Background(), withPrefix(env.RedisURL, env.Prefix))
}

func openMemcached(env Env) (stores.Store, error) {
	return stores.Open(context.Background(), withPrefix("memcached://"+env.MemcachedAddr, env.Prefix))
}

// openLocal opens what open does behind a local tier of 32 MiB: hits are
// answered in the process, with no round trip, so their limit is the
// static handler's.
func openLocal(open func(env Env) (stores.Store, error)) func(env Env) (stores.Store, error) {
	return func(env Env) (stores.Store, error) {
		shared, err := open(env)
		if err != nil {
			return nil, err
		}
		t, err := stores.NewLocalTier(shared, stores.LocalConfig{MaxBytes: 32 << 20})
		if err != nil {
			shared.Close()
			return nil, err
		}
		return t, nil
	}
}

// withPrefix adds a prefix parameter to a store URL.
func withPrefix(rawURL, prefix string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL // stores.Open names the problem
	}
	q := u.Query()
	q.Set("prefix", prefix)
	u.RawQuery = q.Encode()
	return u.String()
}

func startBareRedis(o *origin, env Env) (server, error) {
	opts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		return nil, err
	}
	// The timeouts echocache's redis store gives its own client.
	opts.ReadTimeout, opts.WriteTimeout = stores.DefaultRedisReadTimeout, stores.DefaultRedisWriteTimeout
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	key := env.Prefix + "page"
	if err := rdb.Set(context.Background(), key, o.build(), TTL).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	s := newEcho(func(c echo.Context) error {
		b, err := rdb.Get(c.Request().Context(), key).Bytes()
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, contentType, b)
	}, rdb.Close)
	s.e.GET(RunsPath, o.runsHandler)
	return s, nil
}

func startBareMemcached(o *origin, env Env) (server, error) {
	mc := memcache.New(env.MemcachedAddr)
	// The settings echocache's memcached store gives its own client.
	mc.Timeout, mc.MaxIdleConns = stores.DefaultMemcachedTimeout, stores.DefaultMemcachedMaxIdleConns
	key := env.Prefix + "page"
	if err := mc.Set(&memcache.Item{Key: key, Value: o.build(), Expiration: int32(TTL / time.Second)}); err != nil {
		mc.Close()
		return nil, err
	}
	s := newEcho(func(c echo.Context) error {
		it, err := mc.Get(key)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, contentType, it.Value)
	}, mc.Close)
	s.e.GET(RunsPath, o.runsHandler)
	return s, nil
}

func startEchoHTTPCache(o *origin, _ Env) (server, error) {
	adapter, err := ehcmemory.NewAdapter(ehcmemory.AdapterWithAlgorithm(ehcmemory.LRU), ehcmemory.AdapterWithCapacity(10000))
	if err != nil {
		return nil, err
	}
	client, err := echohttpcache.NewClient(echohttpcache.ClientWithAdapter(adapter), echohttpcache.ClientWithTTL(TTL))
	if err != nil {
		return nil, err
	}
	s := newEcho(client.Middleware()(o.echoHandler))
	s.e.GET(RunsPath, o.runsHandler)
	return s, nil
}

func startHTTPCache(o *origin, _ Env) (server, error) {
	adapter, err := vsmemory.NewAdapter(vsmemory.AdapterWithAlgorithm(vsmemory.LRU), vsmemory.AdapterWithCapacity(10000))
	if err != nil {
		return nil, err
	}
	client, err := vshttpcache.NewClient(vshttpcache.ClientWithAdapter(adapter), vshttpcache.ClientWithTTL(TTL))
	if err != nil {
		return nil, err
	}
	s := newEcho(echo.WrapMiddleware(client.Middleware)(o.echoHandler))
	s.e.GET(RunsPath, o.runsHandler)
	return s, nil
}

// startSouin puts souin's core handler in an Echo middleware, as souin's
// own Echo adapter (module github.com/darkweak/souin/plugins/echo, which
// the module proxy does not serve) does: the handler gets the response
// writer under echo.Response and the rest of the chain as its next.
func startSouin(o *origin, _ Env) (server, error) {
	cfg := &souin.BaseConfiguration{
		DefaultCache: &configurationtypes.DefaultCache{TTL: configurationtypes.Duration{Duration: TTL}},
		LogLevel:     "error", // its default storage warns that it is for development
	}
	h := souin.NewHTTPCacheHandler(cfg)
	mw := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			return h.ServeHTTP(c.Response().Writer, c.Request(), func(w http.ResponseWriter, _ *http.Request) error {
				c.Response().Writer = w
				return next(c)
			})
		}
	}
	s := newEcho(mw(o.echoHandler))
	s.e.GET(RunsPath, o.runsHandler)
	// On every hit net/http logs a superfluous WriteHeader (echo.Response
	// writes a status after souin has written the cached response); the
	// line would flood the output and charge souin's row for writing it.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	return s, nil
}

func newFiber(o *origin, handlers ...fiber.Handler) *fiberServer {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	page := func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, contentType)
		return c.Send(o.build())
	}
	app.Get(PagePath, append(handlers, page)...)
	app.Get(RunsPath, func(c *fiber.Ctx) error { return c.SendString(fmt.Sprint(o.runs.Load())) })
	return &fiberServer{app: app}
}

func startFiberStatic(o *origin, _ Env) (server, error) { return newFiber(o), nil }

func startFiberCache(o *origin, _ Env) (server, error) {
	return newFiber(o, fibercache.New(fibercache.Config{Expiration: TTL})), nil
}

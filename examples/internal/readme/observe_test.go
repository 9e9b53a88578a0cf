package readme_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// The README's logging: the cache's lines through a logger of the app's.
func Example_slog() {
	store, _ := stores.Open(context.Background(), "memory://")
	defer store.Close()
	cache, err := echocache.NewWithConfig(store, echocache.Config{
		Slog: slog.New(slog.NewJSONHandler(os.Stderr, nil)), // default: slog.Default()
	})
	fmt.Println(cache != nil, err)
	// Output: true <nil>
}

// The README's statistics: every lookup once, by feature.
func Example_stats() {
	ctx := context.Background()
	store, _ := stores.Open(ctx, "memory://")
	defer store.Close()
	cache := echocache.New(store)
	e := echo.New()
	e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "page") }, cache.Cached(time.Minute))
	for range 3 {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
	_, _ = echocache.Get[string](ctx, cache, "absent")

	st := cache.Stats()
	fmt.Printf("pages: %d hits, %d misses; values: %d misses\n", st.Pages.Hits, st.Pages.Misses, st.Values.Misses)
	fmt.Printf("hit ratio %.2f, %d failed lookups\n", float64(st.Hits)/float64(st.Hits+st.Misses+st.StaleHits), st.LookupErrors)
	// Output:
	// pages: 2 hits, 1 misses; values: 1 misses
	// hit ratio 0.50, 0 failed lookups
}

// lookupCounter is an echocache.Observer that counts lookups by feature
// and result, as a StatsD or OpenTelemetry client would.
type lookupCounter struct {
	echocache.NopObserver // no StoreCall of its own
	mu                    sync.Mutex
	counts                map[string]int
}

func (o *lookupCounter) Lookup(_ context.Context, ev echocache.LookupEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[ev.Feature.String()+"."+ev.Result.String()]++
}

// The README's observer hook.
func Example_observer() {
	ctx := context.Background()
	store, _ := stores.Open(ctx, "memory://")
	defer store.Close()
	obs := &lookupCounter{counts: map[string]int{}}
	cache, err := echocache.NewWithConfig(store, echocache.Config{Observer: obs})
	if err != nil {
		log.Fatal(err) // a Config it refuses: say so at start-up
	}
	for range 2 {
		_, _ = echocache.GetOrSet(ctx, cache, "k", time.Minute, func(context.Context) (string, error) { return "v", nil })
	}
	var keys []string
	for k := range obs.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Println(k, obs.counts[k])
	}
	// Output:
	// value.hit 1
	// value.miss 1
}

// redisTimer is a go-redis hook, the mechanism redisotel's tracing is
// built on: it sees every command a client sends, with its duration.
type redisTimer struct {
	observe func(ctx context.Context, cmd string, d time.Duration, err error)
}

func (h redisTimer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisTimer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(ctx, cmd.FullName(), time.Since(start), err)
		return err
	}
}

func (h redisTimer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe(ctx, "pipeline", time.Since(start), err)
		return err
	}
}

// newTracedRedisStore is the README's tracing of store calls: a client of
// the app's own, with a hook, handed to the store.
func newTracedRedisStore(addr string, observe func(ctx context.Context, cmd string, d time.Duration, err error)) (*stores.Redis, error) {
	client := redis.NewClient(&redis.Options{Addr: addr})
	client.AddHook(redisTimer{observe: observe}) // or redisotel.InstrumentTracing(client)
	return stores.NewRedis(stores.RedisConfig{Client: client, Prefix: "myapp:"})
}

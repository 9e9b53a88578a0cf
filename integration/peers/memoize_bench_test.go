package peers

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-redis/cache/v9"
	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// BenchmarkMemoizedHitLocal compares a memoized hit on redis behind
// echocache's local tier with go-redis/cache's Once with its TinyLFU local
// cache on the same redis, in interleaved rounds. Both answer from the
// process: ours reads the result from the tier, under the function's
// version token, which it keeps while the tier hears of no change to it
// (so that a ForgetAll in another process is seen
// within a millisecond), go-redis/cache reads the result alone (its local
// cache is never told of another process's change).
func BenchmarkMemoizedHitLocal(b *testing.B) {
	redisURL := os.Getenv("ECHOCACHE_REDIS_URL")
	if redisURL == "" {
		if os.Getenv("CI") == "true" {
			b.Fatal("needs ECHOCACHE_REDIS_URL; run under scripts/with-servers.sh")
		}
		b.Skip("no redis; run under scripts/with-servers.sh")
	}
	ctx := context.Background()
	prefix := "peers-memo-" + strconv.Itoa(os.Getpid()) + ":"

	store, err := stores.Open(ctx, redisURL+"?local=32MiB&prefix="+prefix)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	defer store.Clear(ctx)
	if err := stores.Ping(ctx, store); err != nil {
		b.Fatal(err)
	}
	square := func(_ context.Context, n int) (string, error) { return strconv.Itoa(n * n), nil }
	memo := echocache.Memoize(echocache.New(store), "square", time.Hour, square)

	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	theirs := cache.New(&cache.Options{Redis: rdb, LocalCache: cache.NewTinyLFU(10000, time.Hour)})
	defer rdb.Del(ctx, prefix+"gorc:12345")
	once := func(n int) (string, error) {
		var s string
		err := theirs.Once(&cache.Item{
			Ctx: ctx, Key: prefix + "gorc:" + strconv.Itoa(n), Value: &s, TTL: time.Hour,
			Do: func(*cache.Item) (any, error) { return square(ctx, n) },
		})
		return s, err
	}

	variants := []struct {
		name string
		get  func(n int) (string, error)
	}{
		{"echocache-redis+local", func(n int) (string, error) { return memo.Get(ctx, n) }},
		{"go-redis-cache-once-tinylfu", once},
	}
	for _, v := range variants {
		if s, err := v.get(12345); err != nil || s != "152399025" {
			b.Fatalf("%s: warm-up = %q, %v", v.name, s, err)
		}
	}
	for range 3 {
		for _, v := range variants {
			b.Run(v.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.get(12345); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

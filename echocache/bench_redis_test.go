package echocache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// BenchmarkHitRedis serves BenchmarkHit's 2 KiB page from redis in each
// topology, side by side in one run: one server, a Redis Cluster (three
// masters) and a Sentinel-managed master. The cluster and sentinel hits
// should stay within 1.1x of the single server's: each is one GET to the
// master that holds the page.
func BenchmarkHitRedis(b *testing.B) {
	sentinels, master := servertest.RedisSentinelAddrs(b)
	for _, bb := range []struct{ name, url string }{
		{"redis", servertest.Redis(b) + "?prefix="},
		{"cluster", "redis+cluster://" + strings.Join(servertest.RedisClusterAddrs(b), ",") + "/?prefix="},
		{"sentinel", "redis+sentinel://" + strings.Join(sentinels, ",") + "/" + master + "?prefix="},
	} {
		b.Run(bb.name, func(b *testing.B) {
			store, err := stores.Open(context.Background(), bb.url+"bench-hit-"+bb.name+":")
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			defer store.Clear(context.Background())
			c := New(store)
			e := echo.New()
			e.GET("/page", c.Cached(time.Hour)(routeBenchHandler))
			runRouteBench(b, e)
			if got := c.Stats().Hits; got < uint64(b.N) {
				b.Fatalf("Stats().Hits = %d; want at least %d", got, b.N)
			}
		})
	}
}

// quietRedis drops go-redis's own log lines (a sentinel client logs each
// master it selects), which its global logger would print to stderr.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

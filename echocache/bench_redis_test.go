package echocache

import (
	"context"
	"net/http"
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
// master that holds the page. The first row, bare, is the limit: a handler
// that reads the same bytes with a bare go-redis GET, with the timeouts the
// store gives its own client.
func BenchmarkHitRedis(b *testing.B) {
	sentinels, master := servertest.RedisSentinelAddrs(b)
	b.Run("bare", func(b *testing.B) {
		opts, err := redis.ParseURL(servertest.Redis(b))
		if err != nil {
			b.Fatal(err)
		}
		opts.ReadTimeout, opts.WriteTimeout = stores.DefaultRedisReadTimeout, stores.DefaultRedisWriteTimeout
		opts.ContextTimeoutEnabled = true
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		const key = "bench-hit-bare:page"
		if err := rdb.Set(context.Background(), key, routeBenchBody, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
		defer rdb.Del(context.Background(), key)
		e := echo.New()
		e.GET("/page", func(c echo.Context) error {
			v, err := rdb.Get(c.Request().Context(), key).Bytes()
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, v)
		})
		runRouteBench(b, e, nil)
	})
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
			runRouteBench(b, e, c)
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

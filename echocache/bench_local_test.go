package echocache

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// BenchmarkHitLocal serves BenchmarkHit's 2 KiB page from the memory
// store, from redis, and from redis and memcached behind a local tier,
// side by side (run it with -count to interleave the rounds). A hit the
// tier answers makes no round trip: redis+local and memcached+local should
// be close to memory, and several times faster than redis.
func BenchmarkHitLocal(b *testing.B) {
	type variant struct {
		name, url string
		e         *echo.Echo
		c         *Cache
	}
	vs := []*variant{
		{name: "memory", url: "memory://?prefix="},
		{name: "redis", url: servertest.Redis(b) + "?prefix="},
		{name: "redis+local", url: servertest.Redis(b) + "?local=32MiB&prefix="},
		{name: "memcached+local", url: "memcached://" + servertest.Memcached(b) + "?local=32MiB&local_max_age=1h&prefix="},
	}
	for i, v := range vs {
		store, err := stores.Open(context.Background(), v.url+"bench-local-"+strconv.Itoa(i)+":")
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		defer store.Clear(context.Background())
		if err := stores.Ping(context.Background(), store); err != nil {
			b.Fatal(err)
		}
		v.c = New(store)
		v.e = echo.New()
		v.e.GET("/page", v.c.Cached(time.Hour)(routeBenchHandler))
	}
	// Rounds of every variant in turn, so that a machine busy with other
	// work slows them alike.
	for range benchRounds {
		for _, v := range vs {
			b.Run(v.name, func(b *testing.B) {
				hits := v.c.Stats().Hits
				runRouteBench(b, v.e, v.c)
				if got := v.c.Stats().Hits - hits; got < uint64(b.N) {
					b.Fatalf("Stats().Hits grew by %d; want at least %d", got, b.N)
				}
			})
		}
	}
}

// benchRounds is how many rounds of their variants the interleaved
// benchmarks run.
const benchRounds = 3

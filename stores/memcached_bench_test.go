package stores_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/mcbin"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// The benchmarks below run their variants interleaved, in blocks of 100
// calls each, inside one loop, so that every variant meets the same load
// on a shared machine; they report each variant's time per call and its
// ratio to the first (the bare client):
//
//	go test -run '^$' -bench 'Memcached(Get|RouteHit|LargeGet)' -benchtime 300x -count 6 ./stores

type benchVariant struct {
	name string
	call func(b *testing.B)
}

// runInterleaved runs the variants in alternating blocks, the first of
// each round rotating so that none always follows another, and reports,
// per variant, elapsed and CPU nanoseconds per call and the ratio of its
// elapsed time to the first variant's.
func runInterleaved(b *testing.B, block int, vs ...benchVariant) {
	for _, v := range vs { // warm up: connections, caches
		v.call(b)
	}
	wall := make([]time.Duration, len(vs))
	cpu := make([]time.Duration, len(vs))
	n := 0
	b.ResetTimer()
	for round := 0; b.Loop(); round++ {
		for j := range vs {
			i := (round + j) % len(vs)
			t0, c0 := time.Now(), cpuTime()
			for range block {
				vs[i].call(b)
			}
			wall[i] += time.Since(t0)
			cpu[i] += cpuTime() - c0
		}
		n += block
	}
	for i, v := range vs {
		b.ReportMetric(float64(wall[i].Nanoseconds())/float64(n), v.name+"-ns/call")
		b.ReportMetric(float64(cpu[i].Nanoseconds())/float64(n), v.name+"-cpu-ns/call")
		if i > 0 {
			b.ReportMetric(float64(wall[i])/float64(wall[0]), v.name+"/"+vs[0].name)
		}
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchPage = bytes.Repeat([]byte("echocache "), 2048/10+1)[:2048]

// serveBench serves one GET /page on a new recorder and checks it.
func serveBench(b *testing.B, e *echo.Echo, req *http.Request) {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() != len(benchPage) {
		b.Fatalf("GET /page: status %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// routeHit returns an Echo serving GET /page, cached by echocache on the
// store at rawURL, with the page already cached.
func routeHit(b *testing.B, rawURL string) *echo.Echo {
	s, err := stores.Open(context.Background(), rawURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c := echocache.New(s)
	e := echo.New()
	e.GET("/page", c.Cached(time.Hour)(func(ec echo.Context) error {
		return ec.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, benchPage)
	}))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/page", nil))
	// The page is written after the response; until the write lands, hits
	// would be answered from it, with no round trip.
	if err := c.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/page", nil))
	if rec.Header().Get("X-Cache") != "HIT" {
		b.Fatalf("the page is not cached on %s", rawURL)
	}
	return e
}

// BenchmarkMemcachedRouteHit compares a cached route's hit on memcached
// with a handler that reads the same 2 KiB page with a bare client and
// writes it (the least any memcached-backed page costs): gomemcache's Get
// on a plain server, mcbin's Get on a SASL one. Rows: the store over the
// binary protocol (the default for memcached://host), over the ASCII one
// (protocol=ascii), and over SASL.
func BenchmarkMemcachedRouteHit(b *testing.B) {
	addr := servertest.Memcached(b)
	sasl := servertest.MemcachedSASL(b)
	su, _ := url.Parse(sasl)
	pass, _ := su.User.Password()
	req := httptest.NewRequest(http.MethodGet, "/page", nil)

	gm := memcache.New(addr)
	gm.MaxIdleConns = stores.DefaultMemcachedMaxIdleConns
	gm.Timeout = stores.DefaultMemcachedTimeout
	b.Cleanup(func() { gm.Close() })
	if err := gm.Set(&memcache.Item{Key: "bench:bare-page", Value: benchPage}); err != nil {
		b.Fatal(err)
	}
	bareGomemcache := echo.New()
	bareGomemcache.GET("/page", func(ec echo.Context) error {
		it, err := gm.Get("bench:bare-page")
		if err != nil {
			return err
		}
		return ec.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, it.Value)
	})

	mc, err := mcbin.New(mcbin.Config{Addr: su.Host, Username: su.User.Username(), Password: pass})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mc.Close() })
	if _, err := mc.Set(context.Background(), mcbin.Item{Key: "bench:bare-page", Value: benchPage}); err != nil {
		b.Fatal(err)
	}
	bareSASL := echo.New()
	bareSASL.GET("/page", func(ec echo.Context) error {
		ctx, cancel := context.WithTimeout(ec.Request().Context(), echocache.DefaultStoreTimeout)
		defer cancel()
		it, err := mc.Get(ctx, "bench:bare-page")
		if err != nil {
			return err
		}
		return ec.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, it.Value)
	})

	prefix := "&prefix=bench" + randomHex(4) + ":"
	binary := routeHit(b, "memcached://"+addr+"?protocol=binary"+prefix)
	ascii := routeHit(b, "memcached://"+addr+"?protocol=ascii"+prefix)
	saslHit := routeHit(b, sasl+"?"+prefix[1:])
	serve := func(e *echo.Echo) func(b *testing.B) { return func(b *testing.B) { serveBench(b, e, req) } }
	b.Run("plain", func(b *testing.B) {
		runInterleaved(b, 100,
			benchVariant{"bare-gomemcache", serve(bareGomemcache)},
			benchVariant{"route-binary", serve(binary)},
			benchVariant{"route-ascii", serve(ascii)})
	})
	b.Run("sasl", func(b *testing.B) {
		runInterleaved(b, 100,
			benchVariant{"bare-gomemcache", serve(bareGomemcache)},
			benchVariant{"bare-mcbin-sasl", serve(bareSASL)},
			benchVariant{"route-sasl", serve(saslHit)})
	})
}

// BenchmarkMemcachedGet compares the store's Get of a 2 KiB value (one
// round trip for the entry and its server's generation) with a bare
// gomemcache Get of the same bytes, with and without a context that has a
// deadline (what echocache passes), on the binary and the ASCII protocol.
func BenchmarkMemcachedGet(b *testing.B) {
	ctx := context.Background()
	addr := servertest.Memcached(b)
	gm := memcache.New(addr)
	gm.MaxIdleConns = stores.DefaultMemcachedMaxIdleConns
	gm.Timeout = stores.DefaultMemcachedTimeout
	b.Cleanup(func() { gm.Close() })
	if err := gm.Set(&memcache.Item{Key: "bench:bare-get", Value: benchPage}); err != nil {
		b.Fatal(err)
	}
	binary := newMemcached(b, stores.MemcachedConfig{Servers: []string{addr}})
	ascii := newMemcached(b, stores.MemcachedConfig{Servers: []string{addr}, Protocol: stores.MemcachedASCII})
	for _, s := range []*stores.Memcached{binary, ascii} {
		if err := s.Set(ctx, "k", benchPage, 0); err != nil {
			b.Fatal(err)
		}
	}
	get := func(s *stores.Memcached, timeout bool) func(b *testing.B) {
		return func(b *testing.B) {
			c := ctx
			if timeout {
				var cancel context.CancelFunc
				c, cancel = context.WithTimeout(ctx, echocache.DefaultStoreTimeout)
				defer cancel()
			}
			if v, err := s.Get(c, "k"); err != nil || len(v) != len(benchPage) {
				b.Fatalf("Get = %d bytes, %v", len(v), err)
			}
		}
	}
	runInterleaved(b, 100,
		benchVariant{"bare-gomemcache", func(b *testing.B) {
			if it, err := gm.Get("bench:bare-get"); err != nil || len(it.Value) != len(benchPage) {
				b.Fatalf("Get: %v", err)
			}
		}},
		benchVariant{"store-binary", get(binary, false)},
		benchVariant{"store-binary-deadline", get(binary, true)},
		benchVariant{"store-ascii-deadline", get(ascii, true)})
}

// BenchmarkMemcachedLargeGet reads chunked values of 1 MiB (two items) and
// 4 MiB (five items) through the store, beside a bare mcbin GetMulti of
// items of the same sizes as the value's chunks: what the chunking (a
// manifest read first, the copy into one value, the checksum) costs.
func BenchmarkMemcachedLargeGet(b *testing.B) {
	ctx := context.Background()
	addr := servertest.Memcached(b)
	s := newMemcached(b, stores.MemcachedConfig{Servers: []string{addr}})
	raw, err := mcbin.New(mcbin.Config{Addr: addr, MaxBody: 2 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	item := stores.DefaultMemcachedMaxItemSize - 512
	for _, n := range []int{1 << 20, 4 << 20} {
		name := fmt.Sprint(n>>20, "MiB")
		if err := s.Set(ctx, "large"+name, pattern(2, n), 0); err != nil {
			b.Fatal(err)
		}
		var keys []string
		for off, i := 0, 0; off < n; off, i = off+item, i+1 {
			k := fmt.Sprint("bench:large:", name, ":", i)
			keys = append(keys, k)
			if _, err := raw.Set(ctx, mcbin.Item{Key: k, Value: pattern(1, min(item, n-off))}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			runInterleaved(b, 10,
				benchVariant{fmt.Sprint("bare-mcbin-", len(keys), "-items"), func(b *testing.B) {
					got := 0
					if err := raw.GetMulti(ctx, keys, func(_ int, it mcbin.Item) { got += len(it.Value) }); err != nil || got != n {
						b.Fatalf("GetMulti = %d bytes, %v", got, err)
					}
				}},
				benchVariant{"store-" + name, func(b *testing.B) {
					v, err := s.Get(ctx, "large"+name)
					if err != nil || len(v) != n {
						b.Fatalf("Get = %d bytes, %v", len(v), err)
					}
				}})
		})
	}
}

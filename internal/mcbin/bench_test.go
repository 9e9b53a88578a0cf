package mcbin

import (
	"bytes"
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// The benchmarks compare mcbin with a bare gomemcache client on the same
// server, as sub-benchmarks of one benchmark so that -count alternates
// them: go test -run '^$' -bench 'Get' -count 10 ./internal/mcbin.

func benchClients(b *testing.B) (*Client, *memcache.Client) {
	addr := plainAddr(b)
	c := newClient(b, Config{Addr: addr, MaxIdleConns: 16})
	g := memcache.New(addr)
	g.MaxIdleConns = 16
	g.Timeout = DefaultTimeout
	b.Cleanup(func() { g.Close() })
	return c, g
}

func BenchmarkGet2KiB(b *testing.B) {
	c, g := benchClients(b)
	ctx := context.Background()
	key, value := "mcbin-bench:get2k", bytes.Repeat([]byte{'x'}, 2048)
	if _, err := c.Set(ctx, Item{Key: key, Value: value}); err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, v []byte, err error) {
		if err != nil || len(v) != len(value) {
			b.Fatalf("Get = %d bytes, %v", len(v), err)
		}
	}
	b.Run("mcbin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			it, err := c.Get(ctx, key)
			check(b, it.Value, err)
		}
	})
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			it, err := g.Get(key)
			if err != nil {
				b.Fatal(err)
			}
			check(b, it.Value, nil)
		}
	})
	b.Run("mcbin-sasl", func(b *testing.B) {
		cfg := saslConfig(b, memcachedSASL(b))
		cfg.MaxIdleConns = 16
		sc := newClient(b, cfg)
		if _, err := sc.Set(ctx, Item{Key: key, Value: value}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			it, err := sc.Get(ctx, key)
			check(b, it.Value, err)
		}
	})
	// A request's context: cancellable, with a deadline.
	b.Run("mcbin-reqctx", func(b *testing.B) {
		b.ReportAllocs()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for b.Loop() {
			it, err := c.Get(rctx, key)
			check(b, it.Value, err)
		}
	})
	b.Run("mcbin-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				it, err := c.Get(ctx, key)
				check(b, it.Value, err)
			}
		})
	})
	b.Run("gomemcache-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				it, err := g.Get(key)
				if err != nil {
					b.Fatal(err)
				}
				check(b, it.Value, nil)
			}
		})
	})
}

// BenchmarkGet2KiBInterleaved alternates blocks of 100 Gets of mcbin and
// of gomemcache in one loop, so that both meet the same load on a shared
// machine, and reports each one's time per Get and their ratio.
func BenchmarkGet2KiBInterleaved(b *testing.B) {
	c, g := benchClients(b)
	ctx := context.Background()
	key := "mcbin-bench:get2k-interleaved"
	if _, err := c.Set(ctx, Item{Key: key, Value: bytes.Repeat([]byte{'x'}, 2048)}); err != nil {
		b.Fatal(err)
	}
	const block = 100
	var tm, tg, cm, cg time.Duration
	n := 0
	for b.Loop() {
		t0, c0 := time.Now(), cpuTime()
		for range block {
			if _, err := c.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		t1, c1 := time.Now(), cpuTime()
		for range block {
			if _, err := g.Get(key); err != nil {
				b.Fatal(err)
			}
		}
		tg += time.Since(t1)
		cg += cpuTime() - c1
		tm += t1.Sub(t0)
		cm += c1 - c0
		n += block
	}
	b.ReportMetric(float64(tm.Nanoseconds())/float64(n), "mcbin-ns/get")
	b.ReportMetric(float64(tg.Nanoseconds())/float64(n), "gomemcache-ns/get")
	b.ReportMetric(float64(tm)/float64(tg), "mcbin/gomemcache")
	// The client process's CPU time (user and system), less sensitive to
	// other load on the machine than the elapsed time.
	b.ReportMetric(float64(cm.Nanoseconds())/float64(n), "mcbin-cpu-ns/get")
	b.ReportMetric(float64(cg.Nanoseconds())/float64(n), "gomemcache-cpu-ns/get")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGetMulti2 reads two keys of one server in one round trip, the
// shape of a store read of an entry and its namespace generation.
func BenchmarkGetMulti2(b *testing.B) {
	c, g := benchClients(b)
	ctx := context.Background()
	keys := []string{"mcbin-bench:gm:data", "mcbin-bench:gm:gen"}
	for _, k := range keys {
		if _, err := c.Set(ctx, Item{Key: k, Value: bytes.Repeat([]byte{'x'}, 2048)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("mcbin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if err := c.GetMulti(ctx, keys, func(int, Item) { n++ }); err != nil || n != 2 {
				b.Fatalf("GetMulti: %d items, %v", n, err)
			}
		}
	})
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := g.GetMulti(keys)
			if err != nil || len(m) != 2 {
				b.Fatalf("GetMulti: %d items, %v", len(m), err)
			}
		}
	})
}

// BenchmarkReuseCheck measures what the check before reuse adds to each
// call: a non-blocking peek on an idle connection (one recvfrom).
func BenchmarkReuseCheck(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		nc, err := l.Accept()
		if err == nil {
			defer nc.Close()
			_, _ = nc.Read(make([]byte, 1)) // until the client closes
		}
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	cn := newConn(nc)
	_ = nc.SetDeadline(time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if err := cn.peek.check(); err != nil {
			b.Fatal(err)
		}
	}
}

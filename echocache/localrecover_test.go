package echocache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// A Cache on redis behind a local tier, with its breaker and background
// prober, under readers and a writer while redis is killed and restarted:
// the tier answers nothing while its connection is down (the reads miss,
// fail open, and open the breaker), no read that starts after the restart
// returns a value from before it (the restarted redis is empty), the
// breaker closes by itself, and once the tier's connection is back the
// reads are served from the process again.
func TestLocalTierCacheRecovers(t *testing.T) {
	srv := servertest.StartRedis(t)
	ctx := context.Background()
	store, err := stores.Open(ctx, "redis://"+srv.Addr()+"/0?local=4MiB&prefix="+mwPrefix(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := stores.Ping(ctx, store); err != nil {
		t.Fatal(err)
	}
	tier := store.(*stores.LocalTier)
	c, err := NewWithConfig(store, Config{StoreTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	poll := func(within time.Duration, what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// local polls until reads of k are answered by the tier alone.
	local := func(want string) {
		t.Helper()
		poll(5*time.Second, "reads of k served from the process", func() bool {
			h := tier.LocalStats().Hits
			v, err := Get[string](ctx, c, "k")
			return err == nil && v == want && tier.LocalStats().Hits > h
		})
	}
	if err := Set(ctx, c, "k", "before", stores.NoExpiry, Strict()); err != nil {
		t.Fatal(err)
	}
	local("before")

	var restarted atomic.Int64 // unix nanos when the restarted server answered
	var stale, reads atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				v, err := Get[string](ctx, c, "k")
				reads.Add(1)
				if r := restarted.Load(); err == nil && v == "before" && r != 0 && start > r {
					stale.Add(1)
				}
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	wg.Go(func() { // writes of another key keep going
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = Set(ctx, c, "other", i, time.Minute)
			time.Sleep(time.Millisecond)
		}
	})

	srv.Kill()
	poll(5*time.Second, "tier not coherent and breaker open while redis is down", func() bool {
		return !tier.LocalStats().Coherent && c.Stats().BreakerOpen
	})
	if _, err := Get[string](ctx, c, "k", Strict()); err == nil {
		t.Error("Get(k) while redis is down = a value; want an error (the tier answers nothing then)")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted.Store(time.Now().UnixNano())
	poll(10*time.Second, "breaker closed and tier coherent after the restart", func() bool {
		return !c.Stats().BreakerOpen && tier.LocalStats().Coherent
	})
	if _, err := Get[string](ctx, c, "k", Strict()); err != ErrNotFound {
		t.Errorf("Get(k) on the restarted (empty) redis = %v; want ErrNotFound", err)
	}
	if err := Set(ctx, c, "k", "after", stores.NoExpiry, Strict()); err != nil {
		t.Fatal(err)
	}
	local("after")
	close(stop)
	wg.Wait()
	if n := stale.Load(); n != 0 {
		t.Errorf("%d of %d reads that started after the restart returned the value from before it", n, reads.Load())
	}
}

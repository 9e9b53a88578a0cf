package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// An open breaker is probed in the background: with no call at all after
// the store comes back, the breaker closes within about one cooldown, and
// the prober stops.
func TestOpenBreakerProbedWithoutTraffic(t *testing.T) {
	for _, be := range deadlineBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			p := faultproxy.Start(t, be.start(t))
			c := cacheOn(t, be.url(p.Addr(), storetest.Namespace(t)), time.Second)
			c.Configure(Config{StoreTimeout: time.Second}) // the default breaker
			c.Init(c.Store())
			ctx := t.Context()
			require.NoError(t, c.Set(ctx, "k", []byte("v"), 0))

			p.Drop()
			for i := 0; !c.ReadsOpen(); i++ {
				require.Less(t, i, 100, "the breaker does not open")
				_, err := c.Get(ctx, "k")
				require.Error(t, err)
			}
			_, err := c.Get(ctx, "k")
			require.ErrorIs(t, err, ErrStoreUnavailable)

			p.Pass()
			back := time.Now()
			for c.BreakerOpen() {
				require.Less(t, time.Since(back), 5*time.Second, "the breaker is still open")
				time.Sleep(5 * time.Millisecond) // polls the breaker, not the store
			}
			d := time.Since(back)
			t.Logf("breaker closed %v after the store came back, with no traffic", d.Round(time.Millisecond))
			assert.Less(t, d, time.Second)
			v, err := c.Get(ctx, "k")
			if !errors.Is(err, stores.ErrNotFound) { // a restarted memcached forgot it; the proxy's did not
				require.NoError(t, err)
				assert.Equal(t, "v", string(v))
			}
			for c.probing.Load() {
				require.Less(t, time.Since(back), 5*time.Second, "the prober runs on")
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// The prober ends when the store is closed, leaving the breaker open.
func TestProberEndsWithStore(t *testing.T) {
	p := faultproxy.Start(t, servertest.StartRedis(t).Addr())
	s, err := stores.Open(context.Background(), "redis://"+p.Addr()+"/0?prefix="+storetest.Namespace(t))
	require.NoError(t, err)
	c := new(Cache)
	c.Configure(Config{StoreTimeout: time.Second, BreakerThreshold: 1, BreakerCooldown: 10 * time.Millisecond})
	c.Init(s)
	p.Drop()
	_, err = c.Get(t.Context(), "k")
	require.Error(t, err)
	require.True(t, c.ReadsOpen())
	require.True(t, c.probing.Load())
	require.NoError(t, s.Close())
	start := time.Now()
	for c.probing.Load() {
		require.Less(t, time.Since(start), 5*time.Second, "the prober runs on after Close")
		time.Sleep(5 * time.Millisecond)
	}
}

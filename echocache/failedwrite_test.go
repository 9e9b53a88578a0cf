package echocache_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// limitedBackends are stores that refuse values over 1 MiB: the memory
// store as memory://?max_bytes=1MiB, memcached and redis with
// max_value_size=1MiB.
func limitedBackends() []typedBackend {
	return []typedBackend{
		{name: "memory", open: func(t *testing.T) (stores.Store, stores.Store) {
			s := openStore(t, "memory://?max_bytes=1MiB")
			return s, s
		}},
		{name: "redis", open: func(t *testing.T) (stores.Store, stores.Store) {
			u := servertest.Redis(t) + "?max_value_size=1MiB&prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "memcached", open: func(t *testing.T) (stores.Store, stores.Store) {
			u := "memcached://" + servertest.Memcached(t) + "?max_value_size=1MiB&prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
	}
}

// A value the store refuses as too large leaves the key a miss, never the
// value it was meant to replace: through Set (fail-open and Strict),
// SetMany, SetFragment and a route's stale-while-revalidate refresh.
func TestRefusedWriteLeavesMiss(t *testing.T) {
	big := storetest.Incompressible(2 << 20) // too large for the store, compressed or not
	for _, b := range limitedBackends() {
		t.Run(b.name, func(t *testing.T) {
			s, _ := b.open(t)
			c := newTestCache(t, s, echocache.Config{})
			ctx := context.Background()

			require.NoError(t, echocache.Set(ctx, c, "k", []byte("old"), 0))
			require.NoError(t, echocache.Set(ctx, c, "k", big, 0), "a refused Set fails open")
			_, err := echocache.Get[[]byte](ctx, c, "k")
			require.ErrorIs(t, err, echocache.ErrNotFound, "a refused Set left the previous value")

			require.NoError(t, echocache.Set(ctx, c, "strict", "old", 0))
			require.ErrorIs(t, echocache.Set(ctx, c, "strict", string(big), 0, echocache.Strict()), stores.ErrTooLarge)
			_, err = echocache.Get[string](ctx, c, "strict")
			require.ErrorIs(t, err, echocache.ErrNotFound, "a refused Strict Set left the previous value")

			require.NoError(t, echocache.SetMany(ctx, c, map[string][]byte{"a": []byte("old"), "b": []byte("old")}, 0))
			require.NoError(t, echocache.SetMany(ctx, c, map[string][]byte{"a": []byte("new"), "b": big}, 0))
			_, err = echocache.Get[[]byte](ctx, c, "b")
			require.ErrorIs(t, err, echocache.ErrNotFound, "a refused SetMany item left the previous value")
			if v, err := echocache.Get[[]byte](ctx, c, "a"); err == nil {
				assert.Equal(t, "new", string(v), "a SetMany item kept its previous value")
			}

			key := keyspace.Fragment + "frag"
			require.NoError(t, (*core.Cache)(c).SetFragment(ctx, key, []byte("old"), 0))
			require.ErrorIs(t, (*core.Cache)(c).SetFragment(ctx, key, big, 0), stores.ErrTooLarge)
			_, err = (*core.Cache)(c).GetFragment(ctx, key)
			require.ErrorIs(t, err, stores.ErrNotFound, "a refused fragment left the previous one")
		})
	}
}

// A stale page whose refresh the store refuses (the new page is too large
// for it) is not served again: the next request misses.
func TestRouteRefreshRefusedDropsStalePage(t *testing.T) {
	for _, b := range limitedBackends() {
		t.Run(b.name, func(t *testing.T) {
			s, _ := b.open(t)
			c := newTestCache(t, s, echocache.Config{})
			var grown atomic.Bool
			big := storetest.Incompressible(2 << 20)
			e := echo.New()
			e.GET("/p", func(ec echo.Context) error {
				if grown.Load() {
					return ec.Blob(http.StatusOK, "text/plain", big)
				}
				return ec.String(http.StatusOK, "old")
			}, c.CachedWithConfig(echocache.RouteConfig{TTL: time.Second, StaleWhileRevalidate: time.Hour, MaxBodySize: 8 << 20}))
			get := func() string {
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/p", nil))
				return rec.Body.String()
			}
			require.Equal(t, "old", get())
			grown.Store(true)
			// Once the page is stale, a request gets it and refreshes it in
			// the background; the refresh's page is refused by the store.
			require.Eventually(t, func() bool { return get() != "old" }, 15*time.Second, 50*time.Millisecond,
				"the stale page kept being served after its refresh was refused")
		})
	}
}

// proxiedBackends are redis and memcached reached through a loopback proxy
// the test can take down. open returns the store through the proxy and a
// store on the same namespace that reaches the server directly (another
// process of the application).
type proxiedBackend struct {
	name string
	open func(t *testing.T) (via stores.Store, direct stores.Store, p *faultproxy.Proxy)
}

func proxiedBackends() []proxiedBackend {
	return []proxiedBackend{
		{name: "redis", open: func(t *testing.T) (stores.Store, stores.Store, *faultproxy.Proxy) {
			u, err := url.Parse(servertest.Redis(t))
			require.NoError(t, err)
			p := faultproxy.Start(t, u.Host)
			q := "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, "redis://"+p.Addr()+u.Path+q), openStore(t, u.String()+q), p
		}},
		{name: "memcached", open: func(t *testing.T) (stores.Store, stores.Store, *faultproxy.Proxy) {
			addr := servertest.Memcached(t)
			p := faultproxy.Start(t, addr)
			q := "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, "memcached://"+p.Addr()+q), openStore(t, "memcached://"+addr+q), p
		}},
	}
}

// A write or delete that fails because the store cannot be reached at all
// (the delete that would undo it cannot reach it either) leaves the key
// unreadable here, and gone from the store once it answers again: Set,
// Delete, Memoized.ForgetAll, a Set cut half-way on the network, and a Set
// skipped by the open circuit breaker.
func TestFailedWriteUnreachableStore(t *testing.T) {
	for _, b := range proxiedBackends() {
		t.Run(b.name, func(t *testing.T) {
			via, direct, p := b.open(t)
			c := newTestCache(t, via, echocache.Config{StoreTimeout: 2 * time.Second, BreakerThreshold: -1})
			other := newTestCache(t, direct, echocache.Config{})
			ctx := context.Background()
			gone := func(key string) bool {
				_, err := echocache.Get[string](ctx, other, key)
				return errors.Is(err, echocache.ErrNotFound)
			}

			for _, k := range []string{"set", "del"} {
				require.NoError(t, echocache.Set(ctx, c, k, "old", 0))
			}
			var calls counter
			m := echocache.Memoize(c, "f", 0, func(_ context.Context, a int) (int, error) { calls.n.Add(1); return a, nil })
			_, err := m.Get(ctx, 1)
			require.NoError(t, err)

			p.SetDown(true)
			require.NoError(t, echocache.Set(ctx, c, "set", "new", 0), "Set fails open")
			require.Error(t, c.Delete(ctx, "del"))
			require.Error(t, m.ForgetAll(ctx))
			p.SetDown(false)

			for _, k := range []string{"set", "del"} {
				_, err := echocache.Get[string](ctx, c, k)
				require.ErrorIs(t, err, echocache.ErrNotFound, "%q read its previous value after a failed write", k)
				require.Eventually(t, func() bool { return gone(k) }, 10*time.Second, 20*time.Millisecond,
					"%q kept its previous value in the store after it answered again", k)
			}
			_, err = m.Get(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, int64(2), calls.calls(), "a failed ForgetAll left the memoized result readable")

			// A Set cut half-way through its value.
			require.NoError(t, echocache.Set(ctx, c, "cut", "old", 0))
			p.CutAfter(64 << 10)
			require.NoError(t, echocache.Set(ctx, c, "cut", string(storetest.Incompressible(256<<10)), 0))
			p.CutAfter(0)
			_, err = echocache.Get[string](ctx, c, "cut")
			require.ErrorIs(t, err, echocache.ErrNotFound, "a Set cut on the network left the previous value")
			assert.True(t, gone("cut"))
		})
	}
}

// A Set skipped because the circuit breaker is open never reached the
// store: once the store answers again, the key's previous value is
// removed, not served.
func TestWriteSkippedByBreaker(t *testing.T) {
	for _, b := range proxiedBackends() {
		t.Run(b.name, func(t *testing.T) {
			via, direct, p := b.open(t)
			c := newTestCache(t, via, echocache.Config{StoreTimeout: 2 * time.Second, BreakerThreshold: 1, BreakerCooldown: 50 * time.Millisecond})
			other := newTestCache(t, direct, echocache.Config{})
			ctx := context.Background()
			require.NoError(t, echocache.Set(ctx, c, "k", "old", 0))

			p.SetDown(true)
			_, _ = echocache.Get[string](ctx, c, "k") // fails: the breaker opens
			require.NoError(t, echocache.Set(ctx, c, "k", "new", 0), "Set fails open")
			require.ErrorIs(t, echocache.Set(ctx, c, "k", "new", 0, echocache.Strict()), echocache.ErrStoreUnavailable)
			p.SetDown(false)

			require.Eventually(t, func() bool {
				v, err := echocache.Get[string](ctx, c, "k")
				require.NotEqual(t, "old", v, "the previous value was served after a skipped Set")
				_, derr := echocache.Get[string](ctx, other, "k")
				return errors.Is(err, echocache.ErrNotFound) && errors.Is(derr, echocache.ErrNotFound)
			}, 10*time.Second, 20*time.Millisecond, "the previous value stayed in the store after the breaker closed")
		})
	}
}

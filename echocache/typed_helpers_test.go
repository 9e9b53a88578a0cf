package echocache_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// typedBackend opens the stores the typed API is tested on: the memory and
// file stores and real servers: redis (one server, a cluster, a
// sentinel-managed master, behind a local tier) and memcached (one server,
// a pool, -Y and SASL authentication, behind a local tier).
type typedBackend struct {
	name string
	// open returns two stores on one fresh namespace: for redis, memcached
	// and the file store two clients (two processes of one app); for memory
	// and memcached behind a local tier the same store twice (a
	// process-local store cannot be shared otherwise).
	open func(t *testing.T) (stores.Store, stores.Store)
	// minTTL is the shortest TTL the backend honours reliably.
	minTTL time.Duration
	// semanticsOnly marks a backend run only by storeSemanticsTests.
	semanticsOnly bool
}

// storeSemanticsTests hold every store form to the same semantics (a
// mismatched type keeps the entry, Get[any], Incr keeps the TTL): they run
// on every backend typedBackends lists. The other tests run on the
// backends not marked semanticsOnly (one server of each kind), as their
// timing assumptions hold on one server's clock (a pool's servers expire
// whole seconds on clocks of their own).
var storeSemanticsTests = map[string]bool{
	"TestTypedMismatchKeepsEntry":        true,
	"TestMemoizeMismatchAcrossProcesses": true,
	"TestGetAny":                         true,
	"TestIncrKeepsTTL":                   true,
}

func typedBackends() []typedBackend {
	return []typedBackend{
		{name: "memory", minTTL: 200 * time.Millisecond, open: func(t *testing.T) (stores.Store, stores.Store) {
			s := openStore(t, "memory://")
			return s, s
		}},
		{name: "redis", minTTL: 500 * time.Millisecond, open: func(t *testing.T) (stores.Store, stores.Store) {
			u := servertest.Redis(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "redis-cluster", minTTL: 500 * time.Millisecond, open: func(t *testing.T) (stores.Store, stores.Store) {
			u := "redis+cluster://" + strings.Join(servertest.RedisClusterAddrs(t), ",") + "/?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "redis-sentinel", minTTL: 500 * time.Millisecond, open: func(t *testing.T) (stores.Store, stores.Store) {
			addrs, master := servertest.RedisSentinelAddrs(t)
			u := "redis+sentinel://" + strings.Join(addrs, ",") + "/" + master + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "redis-local", minTTL: 500 * time.Millisecond, open: func(t *testing.T) (stores.Store, stores.Store) {
			// Two processes with local tiers: what one writes, the other
			// sees as soon as redis announces it (within a millisecond).
			u := servertest.Redis(t) + "?local=4MiB&prefix=" + url.QueryEscape(storetest.Namespace(t))
			a, b := openStore(t, u), openStore(t, u)
			require.NoError(t, stores.Ping(t.Context(), a))
			require.NoError(t, stores.Ping(t.Context(), b))
			return a, b
		}},
		{name: "memcached", minTTL: 2 * time.Second, open: func(t *testing.T) (stores.Store, stores.Store) {
			u := "memcached://" + servertest.Memcached(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "memcached-pool", semanticsOnly: true, minTTL: 2 * time.Second, open: func(t *testing.T) (stores.Store, stores.Store) {
			u := "memcached://" + strings.Join(servertest.MemcachedPool(t), ",") + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "memcached-auth-ascii", semanticsOnly: true, minTTL: 2 * time.Second, open: func(t *testing.T) (stores.Store, stores.Store) {
			u := servertest.MemcachedAuth(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "memcached-sasl", semanticsOnly: true, minTTL: 2 * time.Second, open: func(t *testing.T) (stores.Store, stores.Store) {
			u := servertest.MemcachedSASL(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
		{name: "memcached-local", semanticsOnly: true, minTTL: 2 * time.Second, open: func(t *testing.T) (stores.Store, stores.Store) {
			// One tier twice: memcached announces no change, so a second
			// process's tier would keep its copies up to local_max_age.
			s := openStore(t, "memcached://"+servertest.Memcached(t)+"?local=4MiB&prefix="+url.QueryEscape(storetest.Namespace(t)))
			return s, s
		}},
		{name: "file", semanticsOnly: true, minTTL: 200 * time.Millisecond, open: func(t *testing.T) (stores.Store, stores.Store) {
			// Two stores on one directory: two processes sharing it.
			u := "file://" + t.TempDir() + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
			return openStore(t, u), openStore(t, u)
		}},
	}
}

func openStore(t *testing.T, u string) stores.Store {
	t.Helper()
	s, err := stores.Open(context.Background(), u)
	require.NoError(t, err, "stores.Open(%q)", u)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// forEachBackend runs f on every backend, in parallel with nothing else (the
// servers are shared with other packages' tests, the loader counts are not).
func forEachBackend(t *testing.T, f func(t *testing.T, b typedBackend)) {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/")
	for _, b := range typedBackends() {
		if b.semanticsOnly && !storeSemanticsTests[top] {
			continue
		}
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// newTestCache returns a Cache over s whose store timeout is generous (the
// race detector on a busy machine is slow; a timeout would fail open and
// change loader counts) and whose warnings go to the test log.
func newTestCache(t *testing.T, s stores.Store, cfg echocache.Config) *echocache.Cache {
	t.Helper()
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		// Until the test ends: a background removal of unsettled keys may
		// still log after it, which t.Logf must not see.
		var mu sync.Mutex
		ended := false
		t.Cleanup(func() { mu.Lock(); ended = true; mu.Unlock() })
		cfg.Logger = echocache.LoggerFunc(func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if !ended {
				t.Logf("cache: "+format, args...)
			}
		})
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = time.Nanosecond
	}
	c, err := echocache.NewWithConfig(s, cfg)
	require.NoError(t, err)
	return c
}

// counter is a loader that counts its calls.
type counter struct{ n atomic.Int64 }

func (c *counter) calls() int64 { return c.n.Load() }

// failingStore wraps a store and fails every call while fail is set. It is
// not Local, so the cache counts and logs its errors.
type failingStore struct {
	stores.Store
	fail atomic.Bool
}

var errBoom = errors.New("boom: store unreachable")

func (s *failingStore) err(ctx context.Context) error {
	if s.fail.Load() {
		return errBoom
	}
	return nil
}

func (s *failingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.err(ctx); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key)
}

func (s *failingStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if err := s.err(ctx); err != nil {
		return err
	}
	return s.Store.Set(ctx, key, v, ttl)
}

func (s *failingStore) Add(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	if err := s.err(ctx); err != nil {
		return false, err
	}
	return s.Store.Add(ctx, key, v, ttl)
}

func (s *failingStore) Delete(ctx context.Context, key string) error {
	if err := s.err(ctx); err != nil {
		return err
	}
	return s.Store.Delete(ctx, key)
}

func (s *failingStore) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.err(ctx); err != nil {
		return nil, err
	}
	return stores.GetMany(ctx, s.Store, keys)
}

func (s *failingStore) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := s.err(ctx); err != nil {
		return err
	}
	return stores.SetMany(ctx, s.Store, items, ttl)
}

func (s *failingStore) DeleteMany(ctx context.Context, keys []string) error {
	if err := s.err(ctx); err != nil {
		return err
	}
	return stores.DeleteMany(ctx, s.Store, keys)
}

func (s *failingStore) Incr(ctx context.Context, key string, d int64) (int64, error) {
	if err := s.err(ctx); err != nil {
		return 0, err
	}
	return stores.Incr(ctx, s.Store, key, d)
}

// logBuffer collects a cache's warnings.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) Warnf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// hammer calls f from n goroutines released at once and returns the results.
func hammer[R any](n int, f func() (R, error)) ([]R, []error) {
	res := make([]R, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res[i], errs[i] = f()
		}()
	}
	close(start)
	wg.Wait()
	return res, errs
}

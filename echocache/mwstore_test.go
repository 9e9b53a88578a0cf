package echocache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// mwTestStore is a small map-backed store for the middleware tests. It can be
// told to fail, to count calls, and to block Gets.
type mwTestStore struct {
	mu     sync.Mutex
	m      map[string]mwTestItem
	fail   error           // returned by every call when set
	failOn map[string]bool // ops that fail with errMWStoreDown
	block  bool            // calls wait for their context to end
	calls  map[string]int
	local  bool
}

type mwTestItem struct {
	v   []byte
	exp time.Time
}

func newMWTestStore() *mwTestStore {
	return &mwTestStore{m: map[string]mwTestItem{}, calls: map[string]int{}, local: true}
}

// A mwTestStore with local set lives in the process, as far as the Cache
// can tell (internal/inproc).
func init() {
	inproc.Register(func(s any) (inproc.Store, bool) {
		m, ok := s.(*mwTestStore)
		return inproc.Store{}, ok && m.local
	})
}

func (s *mwTestStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *mwTestStore) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *mwTestStore) enter(ctx context.Context, op string) error {
	s.calls[op]++
	if s.fail != nil {
		return s.fail
	}
	if s.failOn[op] {
		return errMWStoreDown
	}
	if s.block {
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
	}
	return ctx.Err()
}

func (s *mwTestStore) setFailOn(ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOn = map[string]bool{}
	for _, op := range ops {
		s.failOn[op] = true
	}
}

func (s *mwTestStore) getLocked(key string) ([]byte, bool) {
	it, ok := s.m[key]
	if !ok || (!it.exp.IsZero() && time.Now().After(it.exp)) {
		delete(s.m, key)
		return nil, false
	}
	return append([]byte(nil), it.v...), true
}

func (s *mwTestStore) setLocked(key string, v []byte, ttl time.Duration) {
	it := mwTestItem{v: append([]byte(nil), v...)}
	if ttl > 0 {
		it.exp = time.Now().Add(ttl)
	}
	s.m[key] = it
}

func (s *mwTestStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "get"); err != nil {
		return nil, err
	}
	v, ok := s.getLocked(key)
	if !ok {
		return nil, stores.ErrNotFound
	}
	return v, nil
}

func (s *mwTestStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "set"); err != nil {
		return err
	}
	s.setLocked(key, v, ttl)
	return nil
}

func (s *mwTestStore) Add(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "add"); err != nil {
		return false, err
	}
	if _, ok := s.getLocked(key); ok {
		return false, nil
	}
	s.setLocked(key, v, ttl)
	return true, nil
}

func (s *mwTestStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "delete"); err != nil {
		return err
	}
	delete(s.m, key)
	return nil
}

func (s *mwTestStore) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "getmany"); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if v, ok := s.getLocked(k); ok {
			out[k] = v
		}
	}
	return out, nil
}

func (s *mwTestStore) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "setmany"); err != nil {
		return err
	}
	for k, v := range items {
		s.setLocked(k, v, ttl)
	}
	return nil
}

func (s *mwTestStore) DeleteMany(ctx context.Context, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "deletemany"); err != nil {
		return err
	}
	for _, k := range keys {
		delete(s.m, k)
	}
	return nil
}

func (s *mwTestStore) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "incr"); err != nil {
		return 0, err
	}
	var n int64
	if v, ok := s.getLocked(key); ok {
		var err error
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return 0, stores.ErrNotInteger
		}
	}
	n += delta
	s.setLocked(key, []byte(strconv.FormatInt(n, 10)), 0)
	return n, nil
}

func (s *mwTestStore) Clear(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter(ctx, "clear"); err != nil {
		return err
	}
	clear(s.m)
	return nil
}

func (s *mwTestStore) Close() error { return nil }

var errMWStoreDown = errors.New("test store: down")

// mwBackends are the real backends the middleware tests run on: the
// memory store, a redis server, a Redis Cluster, a Sentinel-managed
// master, a redis server behind a local tier and a memcached server.
var mwBackends = []string{"memory", "redis", "redis-cluster", "redis-sentinel", "redis-local", "memcached"}

// newMWCache returns a Cache on s for the tests that check what the
// middleware does on real stores. Their store calls get a generous
// timeout and no breaker: on a loaded machine a call can outlast
// DefaultStoreTimeout, and its fail-open miss would show as one more
// handler run, or one waiter fewer, in a test that counts them. The
// fail-open tests (failopen_test.go) configure timeouts of their own.
func newMWCache(t testing.TB, s stores.Store) *Cache {
	t.Helper()
	c, err := NewWithConfig(s, Config{StoreTimeout: 10 * time.Second, BreakerThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forEachMWStore runs f once per real backend (mwBackends), each with a
// fresh Cache over a fresh namespace of its own.
func forEachMWStore(t *testing.T, f func(t *testing.T, c *Cache)) {
	t.Helper()
	for _, name := range mwBackends {
		t.Run(name, func(t *testing.T) {
			f(t, newMWCache(t, openMWStore(t, name)))
		})
	}
}

// openMWStore opens a fresh store of a backend; on redis and memcached the
// namespace is unique to the test.
func openMWStore(t testing.TB, name string) stores.Store {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	return openMWStoreNS(t, name, "mwtest-"+hex.EncodeToString(raw[:])+":")
}

// openMWStoreNS opens a store of a backend on the given namespace. Like
// newMWCache, the store's own timeouts are generous: a store call that
// fails on a loaded machine makes the middleware fail open, which these
// tests would read as a behaviour of the middleware.
func openMWStoreNS(t testing.TB, name, prefix string) stores.Store {
	t.Helper()
	const redisPatience = "&dial_timeout=5s&read_timeout=5s&write_timeout=5s"
	var s stores.Store
	var err error
	switch name {
	case "memory":
		s, err = stores.NewMemory(stores.MemoryConfig{})
	case "redis":
		u := servertest.Redis(t)
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		s, err = stores.Open(context.Background(), u+sep+"prefix="+prefix+redisPatience)
	case "redis-local":
		s, err = stores.Open(context.Background(), servertest.Redis(t)+"?local=4MiB&prefix="+prefix+redisPatience)
		if err == nil {
			err = stores.Ping(context.Background(), s)
		}
	case "redis-cluster":
		s, err = stores.Open(context.Background(), "redis+cluster://"+strings.Join(servertest.RedisClusterAddrs(t), ",")+"/?prefix="+prefix+redisPatience)
	case "redis-sentinel":
		addrs, master := servertest.RedisSentinelAddrs(t)
		s, err = stores.Open(context.Background(), "redis+sentinel://"+strings.Join(addrs, ",")+"/"+master+"?prefix="+prefix+redisPatience)
	case "memcached":
		s, err = stores.Open(context.Background(), "memcached://"+servertest.Memcached(t)+"?timeout=5s&prefix="+prefix)
	default:
		t.Fatalf("unknown store %q", name)
	}
	if err != nil {
		t.Fatalf("open %s store: %v", name, err)
	}
	t.Cleanup(func() {
		_ = s.Clear(context.Background())
		_ = s.Close()
	})
	return s
}

// forEachMWBackend runs f once per real backend; open gives a new Cache over
// a new namespace of that backend each time it is called, for table cases.
func forEachMWBackend(t *testing.T, f func(t *testing.T, open func(t *testing.T) *Cache)) {
	t.Helper()
	for _, name := range mwBackends {
		t.Run(name, func(t *testing.T) {
			f(t, func(t *testing.T) *Cache { return newMWCache(t, openMWStore(t, name)) })
		})
	}
}

// forEachSharedMWBackend runs f once per backend with two Caches over one
// namespace, as two processes sharing a server would have. On memory, the
// two Caches share one store object.
func forEachSharedMWBackend(t *testing.T, f func(t *testing.T, a, b *Cache)) {
	t.Helper()
	for _, name := range mwBackends {
		t.Run(name, func(t *testing.T) {
			if name == "memory" {
				s := openMWStore(t, name)
				f(t, newMWCache(t, s), newMWCache(t, s))
				return
			}
			var raw [6]byte
			_, _ = rand.Read(raw[:])
			prefix := "mwtest-" + hex.EncodeToString(raw[:]) + ":"
			f(t, newMWCache(t, openMWStoreNS(t, name, prefix)), newMWCache(t, openMWStoreNS(t, name, prefix)))
		})
	}
}

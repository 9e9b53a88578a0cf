package integration

// Fault tests: the cache's redis or memcached server dies, comes back, or
// accepts connections and never answers. Through real HTTP, every request
// is still answered by the handler, the store is left alone while the
// circuit breaker is open, each store call is bounded by the Cache's
// StoreTimeout, and caching resumes once the server is back.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// countingStore passes every call on to a store and counts the calls that
// reach it, the calls that failed (neither success nor miss), and the time
// each call was given by its context: the observables of the breaker and of
// the store timeout.
type countingStore struct {
	stores.Store

	calls      atomic.Int64
	failures   atomic.Int64
	noDeadline atomic.Int64 // calls whose context had no deadline
	maxBudget  atomic.Int64 // the longest time a call was given, in ns
	maxOverrun atomic.Int64 // the longest a call ran past its deadline, in ns
}

// call runs one store call, counting it.
func (s *countingStore) call(ctx context.Context, f func() error) {
	s.calls.Add(1)
	deadline, ok := ctx.Deadline()
	if ok {
		storeMax(&s.maxBudget, int64(time.Until(deadline)))
	} else {
		s.noDeadline.Add(1)
	}
	err := f()
	if ok {
		storeMax(&s.maxOverrun, int64(time.Since(deadline)))
	}
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		s.failures.Add(1)
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

func (s *countingStore) Get(ctx context.Context, key string) (v []byte, err error) {
	s.call(ctx, func() error { v, err = s.Store.Get(ctx, key); return err })
	return v, err
}

func (s *countingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	s.call(ctx, func() error { err = s.Store.Set(ctx, key, value, ttl); return err })
	return err
}

func (s *countingStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (ok bool, err error) {
	s.call(ctx, func() error { ok, err = s.Store.Add(ctx, key, value, ttl); return err })
	return ok, err
}

func (s *countingStore) Delete(ctx context.Context, key string) (err error) {
	s.call(ctx, func() error { err = s.Store.Delete(ctx, key); return err })
	return err
}

func (s *countingStore) GetMany(ctx context.Context, keys []string) (m map[string][]byte, err error) {
	s.call(ctx, func() error { m, err = stores.GetMany(ctx, s.Store, keys); return err })
	return m, err
}

func (s *countingStore) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) (err error) {
	s.call(ctx, func() error { err = stores.SetMany(ctx, s.Store, items, ttl); return err })
	return err
}

func (s *countingStore) DeleteMany(ctx context.Context, keys []string) (err error) {
	s.call(ctx, func() error { err = stores.DeleteMany(ctx, s.Store, keys); return err })
	return err
}

func (s *countingStore) Incr(ctx context.Context, key string, delta int64) (n int64, err error) {
	s.call(ctx, func() error { n, err = stores.Incr(ctx, s.Store, key, delta); return err })
	return n, err
}

// openStore opens a store URL and closes it when the test ends.
func openStore(t *testing.T, rawURL string) stores.Store {
	t.Helper()
	s, err := stores.Open(context.Background(), rawURL)
	require.NoError(t, err, "stores.Open(%s)", rawURL)
	t.Cleanup(func() { s.Close() })
	return s
}

// quietLogger drops the cache's warnings; the tests check counters.
var quietLogger = echocache.LoggerFunc(func(string, ...any) {})

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   string
}

// fetch GETs target; a transport error (a panicking handler, a dropped
// connection, a truncated body) fails the test.
func fetch(t *testing.T, target string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err, "GET %s", target)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "GET %s: reading the body", target)
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		require.Equal(t, cl, strconv.Itoa(len(b)), "GET %s: Content-Length and body disagree", target)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// pageServer serves GET /page, cached by c for a minute, whose body counts
// the handler's runs: "page #n".
func pageServer(t *testing.T, c *echocache.Cache) (base string, runs *atomic.Int64) {
	t.Helper()
	runs = new(atomic.Int64)
	e := echo.New()
	e.GET("/page", func(ec echo.Context) error {
		return ec.String(http.StatusOK, fmt.Sprintf("page #%d", runs.Add(1)))
	}, c.Cached(time.Minute))
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)
	return ts.URL, runs
}

// faultBackend is a server kind the fault tests kill and restart.
type faultBackend struct {
	name  string
	start func(t *testing.T) *servertest.Server
	url   func(s *servertest.Server, prefix string) string
}

var faultBackends = []faultBackend{
	{"redis", func(t *testing.T) *servertest.Server { return servertest.StartRedis(t) }, func(s *servertest.Server, p string) string {
		return "redis://" + s.Addr() + "/0?prefix=" + p
	}},
	{"memcached", func(t *testing.T) *servertest.Server { return servertest.StartMemcached(t) }, func(s *servertest.Server, p string) string {
		return "memcached://" + s.Addr() + "?prefix=" + p
	}},
}

// Breaker settings of the fault tests: a short cooldown, so that recovery
// is quick, and a generous store timeout, so that a loaded machine cannot
// turn a live server's answers into fail-open misses.
const (
	faultThreshold = 3
	faultCooldown  = 300 * time.Millisecond
	faultDeadCalls = 20
)

func faultCache(t *testing.T, s stores.Store) *echocache.Cache {
	t.Helper()
	c, err := echocache.NewWithConfig(s, echocache.Config{
		StoreTimeout:     2 * time.Second,
		BreakerThreshold: faultThreshold,
		BreakerCooldown:  faultCooldown,
		Logger:           quietLogger,
	})
	require.NoError(t, err)
	return c
}

// assertBreakerSpared checks that, of the store calls made while the server
// was dead for elapsed, at most faultThreshold went through before the
// breaker opened, plus one probe per cooldown.
func assertBreakerSpared(t *testing.T, cs *countingStore, callsBefore, failuresBefore int64, elapsed time.Duration, attempts int) {
	t.Helper()
	tried := cs.calls.Load() - callsBefore
	probes := int64(elapsed/faultCooldown) + 1
	assert.GreaterOrEqual(t, cs.failures.Load()-failuresBefore, int64(faultThreshold),
		"the dead server made the first calls fail")
	assert.LessOrEqual(t, tried, int64(faultThreshold)+probes,
		"%d store calls for %d attempts in %v: the open breaker must skip the dead store (allowed: %d, then one probe per %v)",
		tried, attempts, elapsed, faultThreshold, faultCooldown)
}

// A cached route whose server is SIGKILLed keeps answering with the
// handler's fresh page; once the breaker is open the store is not
// contacted; when the server is back on its port, pages are cached again.
func TestFaultRouteServerKilled(t *testing.T) {
	for _, be := range faultBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			srv := be.start(t)
			cs := &countingStore{Store: openStore(t, be.url(srv, namespace("fault-route")))}
			c := faultCache(t, cs)
			base, runs := pageServer(t, c)

			first := fetch(t, base+"/page")
			require.Equal(t, http.StatusOK, first.status)
			require.Equal(t, "MISS", first.header.Get("X-Cache"))
			hit := fetch(t, base+"/page")
			require.Equal(t, "HIT", hit.header.Get("X-Cache"), "warm: the page is cached")
			require.Equal(t, first.body, hit.body)
			require.NoError(t, c.Flush(context.Background())) // its write, after its response, has ended

			srv.Kill()
			callsBefore, failuresBefore := cs.calls.Load(), cs.failures.Load()
			startDead := time.Now()
			for range faultDeadCalls {
				want := fmt.Sprintf("page #%d", runs.Load()+1)
				r := fetch(t, base+"/page")
				require.Equal(t, http.StatusOK, r.status, "fail-open: a dead store never fails a request")
				require.Equal(t, want, r.body, "the handler's fresh page, not the cached %q", first.body)
				require.Equal(t, "MISS", r.header.Get("X-Cache"))
				// A page stored meanwhile is written after its response;
				// until its write fails, this process would serve it.
				require.NoError(t, c.Flush(context.Background()))
			}
			assertBreakerSpared(t, cs, callsBefore, failuresBefore, time.Since(startDead), faultDeadCalls)
			assert.GreaterOrEqual(t, c.Stats().StoreErrors, uint64(faultDeadCalls), "every request counts a store error (failed or skipped)")

			require.NoError(t, srv.Restart())
			callsBefore = cs.calls.Load()
			missBodies := map[string]bool{}
			deadline := time.Now().Add(20 * time.Second)
			for {
				r := fetch(t, base+"/page")
				require.Equal(t, http.StatusOK, r.status)
				if r.header.Get("X-Cache") == "HIT" {
					assert.True(t, missBodies[r.body], "HIT %q: want a page stored after the restart (misses: %v)", r.body, missBodies)
					break
				}
				require.Equal(t, fmt.Sprintf("page #%d", runs.Load()), r.body)
				missBodies[r.body] = true
				require.False(t, time.Now().After(deadline), "no HIT within 20s of the restart (store calls since: %d)", cs.calls.Load()-callsBefore)
				time.Sleep(10 * time.Millisecond) // pace the polling; not an assertion
			}
			assert.Greater(t, cs.calls.Load(), callsBefore, "the store is used again")
		})
	}
}

// The typed API (GetOrSet, Memoize) returns the loader's result, and no
// error, while the server is dead; Strict calls see the error; caching
// resumes after a restart.
func TestFaultTypedServerKilled(t *testing.T) {
	for _, be := range faultBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			srv := be.start(t)
			cs := &countingStore{Store: openStore(t, be.url(srv, namespace("fault-typed")))}
			c := faultCache(t, cs)
			ctx := t.Context()

			var loads, squares atomic.Int64
			loader := func(context.Context) (string, error) {
				return fmt.Sprintf("value #%d", loads.Add(1)), nil
			}
			square := echocache.Memoize(c, "square", time.Minute, func(_ context.Context, x int) (string, error) {
				return fmt.Sprintf("%d squared is %d (run #%d)", x, x*x, squares.Add(1)), nil
			})

			v, err := echocache.GetOrSet(ctx, c, "k", time.Minute, loader)
			require.NoError(t, err)
			require.Equal(t, "value #1", v)
			v, err = echocache.GetOrSet(ctx, c, "k", time.Minute, loader)
			require.NoError(t, err)
			require.Equal(t, "value #1", v, "warm: the value is cached")
			sq, err := square.Get(ctx, 7)
			require.NoError(t, err)
			require.Equal(t, "7 squared is 49 (run #1)", sq)
			sq, err = square.Get(ctx, 7)
			require.NoError(t, err)
			require.Equal(t, "7 squared is 49 (run #1)", sq, "warm: the result is memoized")

			srv.Kill()
			callsBefore, failuresBefore := cs.calls.Load(), cs.failures.Load()
			startDead := time.Now()
			for i := range faultDeadCalls {
				v, err := echocache.GetOrSet(ctx, c, "k", time.Minute, loader)
				require.NoError(t, err, "fail-open: no error while the store is dead")
				require.Equal(t, fmt.Sprintf("value #%d", i+2), v, "the loader's fresh result")
				sq, err := square.Get(ctx, 7)
				require.NoError(t, err)
				require.Equal(t, fmt.Sprintf("7 squared is 49 (run #%d)", i+2), sq)
			}
			assertBreakerSpared(t, cs, callsBefore, failuresBefore, time.Since(startDead), 2*faultDeadCalls)

			_, err = echocache.GetOrSet(ctx, c, "k", time.Minute, loader, echocache.Strict())
			require.Error(t, err, "a Strict call sees that the store is unavailable")
			assert.NotErrorIs(t, err, echocache.ErrNotFound)

			require.NoError(t, srv.Restart())
			deadline := time.Now().Add(20 * time.Second)
			for cached := false; !cached; {
				before := loads.Load()
				v, err := echocache.GetOrSet(ctx, c, "k", time.Minute, loader)
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(v, "value #"), "GetOrSet = %q", v)
				cached = loads.Load() == before
				require.False(t, !cached && time.Now().After(deadline), "GetOrSet never hit within 20s of the restart")
				time.Sleep(10 * time.Millisecond) // pace the polling; not an assertion
			}
			for cached := false; !cached; {
				before := squares.Load()
				_, err := square.Get(ctx, 7)
				require.NoError(t, err)
				cached = squares.Load() == before
				require.False(t, !cached && time.Now().After(deadline), "Memoize never hit within 20s of the restart")
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// hungServer accepts TCP connections and never reads from them or answers:
// a server that is up but wedged. It returns its address.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A server that accepts connections but never answers: every request is
// still answered by the handler, each store call is given at most the
// Cache's StoreTimeout, and after BreakerThreshold timeouts the store is
// not called again, so 20 requests cost at most 3 store timeouts.
func TestFaultHungServer(t *testing.T) {
	const (
		storeTimeout = 50 * time.Millisecond
		threshold    = 3
		requests     = 20
	)
	tests := []struct {
		name string
		url  func(addr string) string
	}{
		{name: "redis", url: func(a string) string { return "redis://" + a + "/0?prefix=hung:" }},
		{
			name: "memcached",
			// The store's own timeout is set far above StoreTimeout, so that
			// only the Cache's deadline can end a call early.
			url: func(a string) string { return "memcached://" + a + "?prefix=hung:&timeout=1s" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := &countingStore{Store: openStore(t, tt.url(hungServer(t)))}
			c, err := echocache.NewWithConfig(cs, echocache.Config{
				StoreTimeout:     storeTimeout,
				BreakerThreshold: threshold,
				Logger:           quietLogger,
			})
			require.NoError(t, err)
			(*core.Cache)(c).SetProbeInterval(time.Hour)
			base, _ := pageServer(t, c)

			for i := 1; i <= requests; i++ {
				r := fetch(t, base+"/page")
				require.Equal(t, http.StatusOK, r.status)
				require.Equal(t, fmt.Sprintf("page #%d", i), r.body)
				require.Equal(t, "MISS", r.header.Get("X-Cache"))
			}
			assert.Equal(t, int64(threshold), cs.calls.Load(),
				"%d requests: the first %d store calls time out, then the breaker skips the store", requests, threshold)
			assert.Equal(t, int64(threshold), cs.failures.Load())
			assert.Zero(t, cs.noDeadline.Load(), "every store call has a deadline")
			assert.LessOrEqual(t, time.Duration(cs.maxBudget.Load()), storeTimeout,
				"no store call is given more than StoreTimeout")

			// A call that ignored its deadline would run to the store's own
			// timeout (1s), nearly a second past it; half a second is far
			// from both outcomes.
			assert.Less(t, time.Duration(cs.maxOverrun.Load()), 500*time.Millisecond,
				"a store call ran %v past its deadline: StoreTimeout does not bound the added latency", time.Duration(cs.maxOverrun.Load()))
		})
	}
}

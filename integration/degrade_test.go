package integration

// Degradation tests: a steady load of cached requests over real HTTP
// (20 a second, started on a clock, so that they overlap whenever the
// store is slow) while a redis or memcached server is killed and
// restarted, wedged or slowed down behind a fault proxy. They measure and
// bound what the users of a cache see: how soon after its return a server
// gives hits again, and how long a request waits on a wedged or slow
// server.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
)

// steadyRate is the load of the degradation tests: a request every
// 50 ms, whether the ones before have been answered or not.
const steadyRate = 50 * time.Millisecond

// steadyLoad sends GET base/page/<i mod pages> every steadyRate, each
// from a goroutine of its own, and records every request.
type steadyLoad struct {
	base   string
	pages  int
	client *http.Client

	mu      sync.Mutex
	reqs    []pageRequest
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

func startSteadyLoad(base string, pages int) *steadyLoad {
	l := &steadyLoad{base: base, pages: pages, stop: make(chan struct{}), client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
	l.wg.Go(func() {
		tick := time.NewTicker(steadyRate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.wg.Go(func() { l.record(getPage(l.client, l.base, i%pages)) })
		}
	})
	return l
}

func (l *steadyLoad) record(r pageRequest) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r)
	l.mu.Unlock()
}

// since returns the requests answered at or after t so far.
func (l *steadyLoad) since(t time.Time) []pageRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pageRequest
	for _, r := range l.reqs {
		if !r.at.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// firstHit returns when the first hit at or after t was answered.
func (l *steadyLoad) firstHit(t time.Time) (time.Time, bool) {
	for _, r := range l.since(t) {
		if r.hit {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// firstHitSent returns when the first request sent at or after t that
// was a hit was sent, once it has been answered.
func (l *steadyLoad) firstHitSent(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, r := range l.reqs {
		if sent := r.at.Add(-r.took); r.hit && !sent.Before(t) && (first.IsZero() || sent.Before(first)) {
			first = sent
		}
	}
	return first, !first.IsZero()
}

// finish stops the load, waits for the requests under way and returns
// every request. It may be called more than once.
func (l *steadyLoad) finish() []pageRequest {
	l.stopped.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reqs
}

// degradeBackend is a server kind the degradation tests kill, restart,
// wedge and slow down.
type degradeBackend struct {
	name  string
	start func(t *testing.T) *servertest.Server
	// url is the store URL for a server at addr (the server's, or a
	// fault proxy's in front of it).
	url func(addr, prefix string) string
}

var degradeBackends = []degradeBackend{
	{"redis", func(t *testing.T) *servertest.Server { return servertest.StartRedis(t) }, func(a, p string) string {
		return "redis://" + a + "/0?prefix=" + url.QueryEscape(p)
	}},
	{"memcached", func(t *testing.T) *servertest.Server { return servertest.StartMemcached(t) }, func(a, p string) string {
		return "memcached://" + a + "?timeout=5s&prefix=" + url.QueryEscape(p)
	}},
	{"memcached-ascii", func(t *testing.T) *servertest.Server { return servertest.StartMemcached(t) }, func(a, p string) string {
		return "memcached://" + a + "?protocol=ascii&timeout=5s&prefix=" + url.QueryEscape(p)
	}},
	{"memcached-Y", func(t *testing.T) *servertest.Server { return servertest.StartMemcachedAuth(t) }, func(a, p string) string {
		return "memcached://" + servertest.AuthUser + ":" + servertest.AuthPass + "@" + a + "?timeout=5s&prefix=" + url.QueryEscape(p)
	}},
	{"saslmemcached", func(t *testing.T) *servertest.Server { return servertest.StartMemcachedSASL(t) }, func(a, p string) string {
		return "saslmemcached://" + servertest.AuthUser + ":" + servertest.AuthPass + "@" + a + "?timeout=5s&prefix=" + url.QueryEscape(p)
	}},
}

// restartHitBound is how soon after its return a store must give hits
// again under the steady load.
const restartHitBound = time.Second

// restartStoreTimeout is the Cache's StoreTimeout in the restart tests:
// generous, so that a loaded machine does not make a live server look
// slow; a dead server is refused at once anyway.
const restartStoreTimeout = time.Second

// outageAfterOpen is how long a killed server stays dead after the Cache
// skips it: long enough for client pools to give up on it (go-redis dials
// a server it failed to reach PoolSize times only once a second).
const outageAfterOpen = 3 * time.Second

// restartCache is the Cache of the restart tests, on the store at rawURL:
// with the longest BreakerCooldown allowed, since the bound must hold
// whatever the probe interval.
func restartCache(t *testing.T, rawURL string) *echocache.Cache {
	t.Helper()
	c, err := echocache.NewWithConfig(openStore(t, rawURL), echocache.Config{
		StoreTimeout:    restartStoreTimeout,
		BreakerCooldown: echocache.MaxBreakerCooldown,
		Logger:          quietLogger,
	})
	require.NoError(t, err)
	return c
}

// requestBound is the longest a request may take: one StoreTimeout on the
// store (a request's store calls share one), plus what requests took
// while the store was healthy (handler, HTTP on loopback and scheduling,
// as slow as the machine is in this run), with wedgeSlack for the
// goroutines the outage itself wakes up.
func requestBound(storeTimeout time.Duration, healthy []pageRequest) time.Duration {
	var worst time.Duration
	for _, r := range healthy {
		worst = max(worst, r.took)
	}
	return storeTimeout + wedgeSlack + 2*worst
}

// checkRestart checks what the load saw around a store's return at back:
// a request sent within restartHitBound of it was a hit (the time is the
// request's sending, so that the client's own latency under load does not
// count), every request answered whole within requestBound. healthy are
// the requests before the fault.
func checkRestart(t *testing.T, name string, l *steadyLoad, back time.Time, healthy []pageRequest) {
	t.Helper()
	pollUntil(t, 10*time.Second, "a hit after the store's return", func(context.Context) bool { _, ok := l.firstHitSent(back); return ok })
	reqs := l.finish() // every request sent has been answered
	first, _ := l.firstHitSent(back)
	d := first.Sub(back)
	bound := requestBound(restartStoreTimeout, healthy)
	slowed := 0
	var worst time.Duration
	for _, r := range reqs {
		worst = max(worst, r.took)
		if r.took >= 100*time.Millisecond {
			slowed++
		}
	}
	t.Logf("%s: first hit %v after the store's return; %d of %d requests took 100 ms or more; the slowest %v (bound %v)",
		name, d.Round(time.Millisecond), slowed, len(reqs), worst.Round(time.Millisecond), bound.Round(time.Millisecond))
	assert.LessOrEqual(t, d, restartHitBound, "first hit after the store's return")
	assert.LessOrEqual(t, worst, bound, "the slowest request: one StoreTimeout at most on the store")
	assert.LessOrEqual(t, slowed, wedgeSlowed, "requests slowed by the outage (a dead server refuses connections at once)")
	checkWhole(t, reqs)
}

// TestDegradeRestartFirstHit kills each kind of store under the steady
// load, keeps it dead, brings it back, and measures how long after its
// return the first hit comes. What "comes back" means depends on the
// topology:
//   - one server (redis, each memcached form): the killed server is
//     restarted, empty (a miss stores the page, the next request is the
//     hit), a few seconds after the Cache began to skip it;
//   - a Redis Cluster: the master holding the page is killed and stays
//     dead; the store is back when its replica reports the master role
//     (the Cache never skips the whole store: the other masters answer);
//   - a Sentinel set: the master is killed and stays dead; the store is
//     back when a sentinel announces the replica as the new master.
//
// The moment of return is when the test saw it (polled every 10 ms), so
// the time measured is at most 10 ms short. Every request is answered
// whole throughout, within one StoreTimeout on the store.
func TestDegradeRestartFirstHit(t *testing.T) {
	for _, be := range degradeBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			srv := be.start(t)
			c := restartCache(t, be.url(srv.Addr(), namespace("degrade-restart")))
			l := startSteadyLoad(pagesServer(t, c), 1)
			defer l.finish()
			start := time.Now()
			pollUntil(t, 10*time.Second, "a first hit", func(context.Context) bool { _, ok := l.firstHit(start); return ok })
			healthy := l.since(start)

			srv.Kill()
			pollUntil(t, 10*time.Second, "the Cache skips the dead server", func(context.Context) bool { return (*core.Cache)(c).ReadsOpen() })
			time.Sleep(outageAfterOpen) // the outage: not an assertion

			require.NoError(t, srv.Restart())
			checkRestart(t, be.name, l, time.Now(), healthy)
		})
	}
	t.Run("redis-cluster", func(t *testing.T) {
		t.Parallel()
		cl := servertest.StartRedisCluster(t, "--cluster-require-full-coverage", "no")
		prefix := namespace("degrade-restart-cluster")
		c := restartCache(t, "redis+cluster://"+strings.Join(cl.Addrs(), ",")+"/?prefix="+url.QueryEscape(prefix))
		l := startSteadyLoad(pagesServer(t, c), 1)
		defer l.finish()
		start := time.Now()
		pollUntil(t, 10*time.Second, "a first hit", func(context.Context) bool { _, ok := l.firstHit(start); return ok })
		healthy := l.since(start)

		victim, replicas, err := cl.MasterOf(t.Context(), prefix+"r:u/page/0?")
		require.NoError(t, err)
		require.NotEmpty(t, replicas)
		victim.Kill()
		back := pollUntil(t, 30*time.Second, "the replica is promoted", func(ctx context.Context) bool {
			for _, r := range replicas {
				if isMaster(ctx, r.Addr()) {
					return true
				}
			}
			return false
		})
		checkRestart(t, "redis-cluster", l, back, healthy)
	})
	t.Run("redis-sentinel", func(t *testing.T) {
		t.Parallel()
		set := servertest.StartRedisSentinel(t)
		c := restartCache(t, "redis+sentinel://"+strings.Join(set.Addrs(), ",")+"/"+set.Name+"?prefix="+url.QueryEscape(namespace("degrade-restart-sentinel")))
		l := startSteadyLoad(pagesServer(t, c), 1)
		defer l.finish()
		start := time.Now()
		pollUntil(t, 10*time.Second, "a first hit", func(context.Context) bool { _, ok := l.firstHit(start); return ok })
		healthy := l.since(start)

		old, err := set.MasterAddr(t.Context())
		require.NoError(t, err)
		set.Master.Kill()
		back := pollUntil(t, 30*time.Second, "a sentinel announces a new master", func(ctx context.Context) bool {
			addr, err := set.MasterAddr(ctx)
			return err == nil && addr != old
		})
		checkRestart(t, "redis-sentinel", l, back, healthy)
	})
}

// isMaster reports whether the redis-server at addr reports the master
// role.
func isMaster(ctx context.Context, addr string) bool {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	role, err := rc.Do(ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

// Settings of the wedge and slow-server tests.
const (
	// wedgeTimeout is the Cache's StoreTimeout: the bound of what a
	// request may wait on a wedged or slow server.
	wedgeTimeout = 500 * time.Millisecond
	// wedgeSlack is what a request may take beyond wedgeTimeout: the
	// handler, HTTP on loopback and scheduling on a loaded machine.
	wedgeSlack = 250 * time.Millisecond
	// comeBackBound is how soon after a fault ends the pages must be hits
	// again.
	comeBackBound = time.Second
	// wedgeSlowed bounds the requests that wait on a wedged server: those
	// sent during the first timeouts, until BreakerThreshold of them have
	// failed (at 20 requests a second, about 10 for each timeout), with
	// room for a loaded machine.
	wedgeSlowed = 25
)

// proxiedCache starts be's server behind a fault proxy and returns a
// Cache on it with wedgeTimeout, and the proxy.
func proxiedCache(t *testing.T, be degradeBackend, ns string) (*echocache.Cache, *faultproxy.Proxy) {
	t.Helper()
	srv := be.start(t)
	p := faultproxy.Start(t, srv.Addr())
	c, err := echocache.NewWithConfig(openStore(t, be.url(p.Addr(), namespace(ns))), echocache.Config{
		StoreTimeout: wedgeTimeout,
		Logger:       quietLogger,
	})
	require.NoError(t, err)
	return c, p
}

// awaitHits waits until every page has been a hit since t.
func awaitHits(t *testing.T, l *steadyLoad, t0 time.Time, limit time.Duration) time.Time {
	t.Helper()
	return pollUntil(t, limit, "every page a hit", func(context.Context) bool {
		seen := map[int]bool{}
		for _, r := range l.since(t0) {
			if r.hit {
				seen[r.page] = true
			}
		}
		return len(seen) == l.pages
	})
}

// TestDegradeWedge wedges each kind of server (the proxy accepts and reads,
// and forwards nothing) under the steady load: no request waits on it for
// more than one store timeout (requestBound: with the machine's own latency
// in this run), the Cache soon skips it, and once the wedge ends the pages
// are hits again within comeBackBound.
func TestDegradeWedge(t *testing.T) {
	for _, be := range degradeBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			c, p := proxiedCache(t, be, "degrade-wedge")
			l := startSteadyLoad(pagesServer(t, c), 4)
			defer l.finish()
			awaitHits(t, l, time.Now(), 10*time.Second)
			healthy := l.since(time.Time{})

			p.Stall()
			wedged := time.Now()
			pollUntil(t, 10*time.Second, "the Cache skips the wedged server", func(context.Context) bool { return (*core.Cache)(c).ReadsOpen() })
			time.Sleep(time.Second) // the wedge goes on: not an assertion
			p.Pass()
			unwedged := time.Now()
			back := awaitHits(t, l, unwedged, 10*time.Second)

			var worst time.Duration
			n, slowed := 0, 0
			for _, r := range l.since(wedged) {
				if r.at.Add(-r.took).Before(unwedged) { // sent during the wedge
					worst = max(worst, r.took)
					n++
					if r.took >= wedgeTimeout/2 {
						slowed++
					}
				}
			}
			t.Logf("%s: %d requests during the wedge, %d slowed by it, the slowest took %v; every page a hit %v after its end",
				be.name, n, slowed, worst.Round(time.Millisecond), back.Sub(unwedged).Round(time.Millisecond))
			assert.LessOrEqual(t, worst, requestBound(wedgeTimeout, healthy), "the slowest request during the wedge")
			assert.LessOrEqual(t, slowed, wedgeSlowed, "requests that waited on the wedged server")
			assert.LessOrEqual(t, back.Sub(unwedged), comeBackBound, "pages hits again after the wedge")
			checkWhole(t, l.finish())
		})
	}
}

// TestDegradeSlowServer makes each kind of server answer every call just
// over half the store timeout (the proxy delays each reply), under the
// steady load: within a couple of seconds the Cache skips it like a
// server that fails, so requests stop waiting on it; once it is quick
// again, the pages are hits again within comeBackBound.
func TestDegradeSlowServer(t *testing.T) {
	const delay = wedgeTimeout * 6 / 10
	for _, be := range degradeBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			c, p := proxiedCache(t, be, "degrade-slow")
			l := startSteadyLoad(pagesServer(t, c), 4)
			defer l.finish()
			awaitHits(t, l, time.Now(), 10*time.Second)

			p.Delay(delay)
			slowed := time.Now()
			skipped := pollUntil(t, 10*time.Second, "the Cache skips the slow server", func(context.Context) bool { return (*core.Cache)(c).ReadsOpen() })
			time.Sleep(time.Second) // the server stays slow: not an assertion
			p.Pass()
			quick := time.Now()
			back := awaitHits(t, l, quick, 10*time.Second)

			var worstAfter time.Duration
			for _, r := range l.since(skipped) {
				if sent := r.at.Add(-r.took); sent.After(skipped) && sent.Before(quick) {
					worstAfter = max(worstAfter, r.took)
				}
			}
			t.Logf("%s: skipped %v after it turned slow; the slowest request sent while skipped took %v; every page a hit %v after it was quick",
				be.name, skipped.Sub(slowed).Round(time.Millisecond), worstAfter.Round(time.Millisecond), back.Sub(quick).Round(time.Millisecond))
			assert.LessOrEqual(t, skipped.Sub(slowed), 2*slowWindowBound, "the slow server is skipped")
			assert.Less(t, worstAfter, delay, "a request waited on the skipped server")
			assert.LessOrEqual(t, back.Sub(quick), comeBackBound, "pages hits again once the server is quick")
			checkWhole(t, l.finish())
		})
	}
}

// slowWindowBound is how long a slow server may go on being used: the
// Cache skips a server whose calls were mostly slow for two seconds.
const slowWindowBound = 2 * time.Second

// TestDegradeRequestEndedDuringLookup sends requests that their clients
// give up on while the page lookup waits on a wedged server: once the
// lookup fails, the route returns instead of running the handler for
// nobody.
func TestDegradeRequestEndedDuringLookup(t *testing.T) {
	const requests = 8
	c, p := proxiedCache(t, degradeBackends[0], "degrade-ended")
	var runs atomic.Int64
	handled := make(chan error, requests)
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			err := next(ec)
			handled <- err
			return err
		}
	})
	e.GET("/page", func(ec echo.Context) error {
		runs.Add(1)
		return ec.String(http.StatusOK, "page")
	}, c.Cached(time.Hour))
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)

	p.Stall()
	client := &http.Client{Timeout: wedgeTimeout / 5}
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			resp, err := client.Get(ts.URL + "/page")
			if err == nil {
				resp.Body.Close()
			}
			assert.Error(t, err, "the client gives up before the lookup ends")
		})
	}
	wg.Wait()
	for range requests {
		select {
		case err := <-handled:
			assert.ErrorIs(t, err, context.Canceled, "what the route returns for a request that ended")
		case <-time.After(10 * time.Second):
			t.Fatal("a request is still being handled 10 s after its client gave up")
		}
	}
	assert.Zero(t, runs.Load(), "handler runs for requests whose clients had gone")
}

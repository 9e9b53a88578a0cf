package core

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// deadlineBackend is a store kind, and whether the Cache gives it
// deadlines without a timer.
type deadlineBackend struct {
	name      string
	timerless bool
	start     func(t *testing.T) string // a server's address
	url       func(addr, prefix string) string
}

var deadlineBackends = []deadlineBackend{
	{"redis", true, func(t *testing.T) string { return servertest.StartRedis(t).Addr() }, func(a, p string) string {
		return "redis://" + a + "/0?prefix=" + url.QueryEscape(p)
	}},
	{"memcached", true, func(t *testing.T) string { return servertest.StartMemcached(t).Addr() }, func(a, p string) string {
		return "memcached://" + a + "?timeout=10s&prefix=" + url.QueryEscape(p)
	}},
	{"saslmemcached", true, func(t *testing.T) string { return servertest.StartMemcachedSASL(t).Addr() }, func(a, p string) string {
		return "saslmemcached://" + servertest.AuthUser + ":" + servertest.AuthPass + "@" + a + "?timeout=10s&prefix=" + url.QueryEscape(p)
	}},
	{"memcached-ascii", false, func(t *testing.T) string { return servertest.StartMemcached(t).Addr() }, func(a, p string) string {
		return "memcached://" + a + "?protocol=ascii&timeout=10s&prefix=" + url.QueryEscape(p)
	}},
}

// cacheOn returns a Cache on the store at rawURL with StoreTimeout
// timeout and no breaker.
func cacheOn(t *testing.T, rawURL string, timeout time.Duration) *Cache {
	t.Helper()
	s, err := stores.Open(context.Background(), rawURL)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	c := new(Cache)
	c.Configure(Config{StoreTimeout: timeout, BreakerThreshold: -1})
	c.Init(s)
	return c
}

// warm fills c's connection pool with n connections through p (a new one
// costs round trips of its own, a handshake, authentication, which a
// slowed proxy would add to a call's time): rounds of n concurrent calls,
// each held a little by the proxy so that they overlap, until p carries n
// connections.
func warm(t *testing.T, c *Cache, p *faultproxy.Proxy, n int) {
	t.Helper()
	p.Delay(10 * time.Millisecond)
	defer p.Pass()
	deadline := time.Now().Add(10 * time.Second)
	for p.Conns() < n {
		require.True(t, time.Now().Before(deadline), "%d connections through the proxy; want %d", p.Conns(), n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				assert.NoError(t, c.Set(t.Context(), "warm"+strconv.Itoa(i), []byte("v"), 0))
			})
		}
		wg.Wait()
	}
}

// slackFor returns what a call may take past its deadline in this run:
// floor, or four times the slowest of n concurrent calls that the store
// answered at once (the machine's own latency now: scheduling, loopback,
// the race detector) if that is more, so that the bound scales with the
// load of the machine rather than failing under it. Each test picks its
// floor so that the bound still tells what it checks from what it rules
// out.
func slackFor(t *testing.T, c *Cache, n int, floor time.Duration) time.Duration {
	t.Helper()
	var mu sync.Mutex
	var worst time.Duration
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			start := time.Now()
			_, err := c.Get(t.Context(), "warm0")
			took := time.Since(start)
			assert.NoError(t, err)
			mu.Lock()
			worst = max(worst, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	return max(floor, 4*worst)
}

// TestDeadlineBoundsEveryStore wedges each networked store (the proxy
// forwards nothing) and checks that concurrent calls end by their deadline,
// whether the Cache gives it with a timer or, to the stores that honour a
// deadline alone, without one. A call may overrun its deadline by one
// timeout on a loaded machine: without the deadline it would wait for the
// store's own timeout (10 s) or for ever.
func TestDeadlineBoundsEveryStore(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, be := range deadlineBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			p := faultproxy.Start(t, be.start(t))
			c := cacheOn(t, be.url(p.Addr(), storetest.Namespace(t)), timeout)
			assert.Equal(t, be.timerless, c.store.Load().timerless, "given deadlines without a timer")
			ctx := t.Context()
			warm(t, c, p, 8)
			slack := slackFor(t, c, 8, timeout)

			p.Stall()
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					start := time.Now()
					_, err := c.Get(ctx, "k")
					took := time.Since(start)
					assert.Error(t, err)
					assert.LessOrEqual(t, took, timeout+slack, "a Get of a wedged store took %v (%v)", took, err)
				})
			}
			wg.Wait()
		})
	}
}

// TestBudgetBoundsRequest makes each store answer every call slowly (0.4
// of the store timeout) and runs requests of four calls each, eight at
// once: with a budget each request waits on the store for one store
// timeout at most, in total (the third call is cut short, and the fourth
// fails at once with ErrBudgetSpent, without calling the store). Without
// budgets, they would wait 1.6 timeouts; the bound, one timeout and
// slack of at least 0.3 of one for a loaded machine, tells the two apart.
func TestBudgetBoundsRequest(t *testing.T) {
	const timeout = time.Second
	const delay = timeout * 4 / 10
	for _, be := range deadlineBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			p := faultproxy.Start(t, be.start(t))
			c := cacheOn(t, be.url(p.Addr(), storetest.Namespace(t)), timeout)
			ctx := t.Context()
			warm(t, c, p, 8)
			slack := slackFor(t, c, 8, timeout*3/10)
			require.NoError(t, c.Set(ctx, "page", []byte("v"), 0))

			p.Delay(delay)
			request := func(ctx context.Context) (took time.Duration, errs []error) {
				start := time.Now()
				_, err := c.Get(ctx, "page")
				errs = append(errs, err)
				_, err = c.Get(ctx, "variant")
				errs = append(errs, err)
				errs = append(errs, c.SetMany(ctx, map[string][]byte{"a": []byte("1"), "b": []byte("2")}, 0))
				_, err = c.Get(ctx, "tag")
				errs = append(errs, err)
				return time.Since(start), errs
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					bctx := c.WithBudget(ctx)
					took, errs := request(bctx)
					assert.LessOrEqual(t, took, timeout+slack, "a request with a budget waited %v on the store (%v)", took, errs)
					assert.NoError(t, errs[0], "the first call has time enough")
					assert.Error(t, errs[2], "the third call is cut short by the budget")
					assert.ErrorIs(t, errs[3], ErrBudgetSpent, "the fourth call")
					start := time.Now()
					_, err := c.Get(bctx, "page")
					assert.ErrorIs(t, err, ErrBudgetSpent)
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					// A call that reached the store would take delay at least.
					assert.Less(t, time.Since(start), delay, "a call after the budget is spent waits on the store")
				})
			}
			wg.Wait()
		})
	}
}

// A context that carries a budget already is returned as it is, so that
// nested front ends share one; a cache on an in-process store gives none.
func TestWithBudgetShared(t *testing.T) {
	c := cacheOn(t, "redis://127.0.0.1:1/0", time.Second)
	outer := c.WithBudget(context.Background())
	require.NotNil(t, budgetOf(outer))
	inner := c.WithBudget(context.WithValue(outer, struct{}{}, 1))
	assert.Same(t, budgetOf(outer), budgetOf(inner))

	m := cacheOn(t, "memory://", time.Second)
	ctx := context.Background()
	assert.Equal(t, ctx, m.WithBudget(ctx))
}

// A call whose caller's context ended reports it with ErrCallerGone (and
// the context's error), whatever the store said, so that a front end can
// tell it from a store failure; it does not count against the store.
func TestCallerGone(t *testing.T) {
	p := faultproxy.Start(t, servertest.StartRedis(t).Addr())
	c := cacheOn(t, deadlineBackends[0].url(p.Addr(), storetest.Namespace(t)), time.Second)
	c.Configure(Config{StoreTimeout: time.Second, BreakerThreshold: 1})
	c.Init(c.Store())
	p.Stall()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, ErrCallerGone)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, c.ReadsOpen(), "a caller that went away opened the breaker")

	_, err = c.Get(ctx, "k") // ended before the call
	require.ErrorIs(t, err, ErrCallerGone)
	assert.Zero(t, c.stats.StoreErrors.Load())
}

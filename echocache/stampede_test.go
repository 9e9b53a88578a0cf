package echocache

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/pagecache"
)

// stampede runs one leader request, waits until its handler runs, starts
// n-1 more requests, waits until all of them wait for the leader, then lets
// the leader's handler finish. It returns every response, leader first.
func stampede(t *testing.T, env *routeEnv, n int, entered <-chan struct{}, release chan<- struct{}) []*httptest.ResponseRecorder {
	t.Helper()
	waiting := make(chan struct{}, n)
	pagecache.HooksOf(env.c.core()).OnWait = func() { waiting <- struct{}{} }
	t.Cleanup(func() { pagecache.HooksOf(env.c.core()).OnWait = nil })

	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		recs[0] = env.do(http.MethodGet, "/s")
	}()
	<-entered
	finished := make(chan struct{}, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = env.do(http.MethodGet, "/s")
			finished <- struct{}{}
		}()
	}
	awaitWaiting(t, waiting, finished, n-1)
	close(release)
	wg.Wait()
	return recs
}

// awaitWaiting receives want signals on waiting (the route state's
// onWait), one per request that waits for the leader. A request that ends
// first (a signal on finished) did not wait: the test fails, and goes on
// rather than waiting for a signal that will not come.
func awaitWaiting(t *testing.T, waiting, finished <-chan struct{}, want int) {
	t.Helper()
	for got := 0; got < want; {
		select {
		case <-waiting:
			got++
		case <-finished:
			t.Errorf("a request ended while the leader's handler ran: %d of %d waited", got, want)
			return
		}
	}
}

func TestCachedStampede(t *testing.T) {
	const n = 8
	tests := []struct {
		name string
		// leader is the first call's behaviour after it is released.
		leader     func(c echo.Context) error
		shared     bool
		leaderCode int
		// private: the leader's answer was whole but its own, so the turn
		// goes to up to two waiters at once (slow start) rather than one.
		private bool
	}{
		{
			name:   "ok, a cacheable response is shared",
			leader: func(c echo.Context) error { return c.String(http.StatusOK, "leader") },
			shared: true, leaderCode: 200,
		},
		{
			name: "nok, a response with Set-Cookie is not shared",
			leader: func(c echo.Context) error {
				c.SetCookie(&http.Cookie{Name: "sid", Value: "leader-secret"})
				return c.String(http.StatusOK, "leader")
			},
			leaderCode: 200, private: true,
		},
		{
			name:       "nok, a 500 is not shared",
			leader:     func(c echo.Context) error { return c.String(http.StatusInternalServerError, "leader") },
			leaderCode: 500,
		},
		{
			name:       "nok, an error is not shared",
			leader:     func(c echo.Context) error { return errRouteTest },
			leaderCode: 500,
		},
		{
			name:       "nok, a panic is not shared and wedges nobody",
			leader:     func(c echo.Context) error { panic("leader panics") },
			leaderCode: 500,
		},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				env.e.Use(middleware.Recover())
				entered := make(chan struct{})
				release := make(chan struct{})
				h := env.counted(func(c echo.Context) error {
					if env.calls.Load() == 1 {
						close(entered)
						<-release
						return tt.leader(c)
					}
					c.Response().Header().Set("X-Own", "1")
					return c.String(http.StatusOK, "own")
				})
				env.e.GET("/s", h, env.c.CachedWithConfig(env.cfg(time.Minute)))

				recs := stampede(t, env, n, entered, release)
				assert.Equal(t, tt.leaderCode, recs[0].Code)
				if tt.shared {
					assert.Equal(t, int64(1), env.calls.Load(), "the handler ran once")
					for i, rec := range recs[1:] {
						assert.Equal(t, "leader", rec.Body.String(), "waiter %d", i)
						assert.Equal(t, StatusHit, rec.Header().Get("X-Cache"), "waiter %d", i)
					}
					return
				}
				// The turn passed to one waiter (two after a private answer),
				// whose cacheable response the others got.
				maxCalls := int64(2)
				if tt.private {
					maxCalls = 3
				}
				assert.GreaterOrEqual(t, env.calls.Load(), int64(2), "a waiter ran the handler")
				assert.LessOrEqual(t, env.calls.Load(), maxCalls, "the waiters did not all run the handler")
				for i, rec := range recs[1:] {
					assert.Equal(t, http.StatusOK, rec.Code, "waiter %d", i)
					assert.Equal(t, "own", rec.Body.String(), "waiter %d", i)
					assert.Equal(t, "1", rec.Header().Get("X-Own"), "waiter %d got a waiter's response", i)
					assert.Empty(t, rec.Header().Values("Set-Cookie"), "waiter %d got no cookie", i)
				}
			})
		}
	})
}

// concurrency counts the handler runs in progress and the most at once.
type concurrency struct {
	mu        sync.Mutex
	now, peak int
}

func (c *concurrency) enter() {
	c.mu.Lock()
	c.now++
	c.peak = max(c.peak, c.now)
	c.mu.Unlock()
}

func (c *concurrency) leave() {
	c.mu.Lock()
	c.now--
	c.mu.Unlock()
}

func (c *concurrency) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

// After a leader whose answer cannot be shared, its waiters do not all run
// the handler at once: a failure (a panic behind middleware.Recover, an
// error, a 5xx, a client that went away) hands the turn to one waiter at a
// time; a whole answer of the request's own (a cookie) lets one more run
// per answer. Nobody ever gets another request's cookie.
func TestCachedStampedeHandoff(t *testing.T) {
	const n = 50
	tests := []struct {
		name string
		// run is call number i's behaviour (the leader is call 1).
		run       func(c echo.Context, i int64) error
		wantCalls int64 // 0: n
		maxAtOnce int
		own       bool // every request gets an answer of its own
	}{
		{
			name: "ok, the leader panics, the next runner's page is shared",
			run: func(c echo.Context, i int64) error {
				if i == 1 {
					panic("leader panics")
				}
				return c.String(http.StatusOK, "page")
			},
			wantCalls: 2, maxAtOnce: 1,
		},
		{
			name: "ok, the leader errs, the next runner's page is shared",
			run: func(c echo.Context, i int64) error {
				if i == 1 {
					return errRouteTest
				}
				return c.String(http.StatusOK, "page")
			},
			wantCalls: 2, maxAtOnce: 1,
		},
		{
			name: "nok, every run panics: one at a time",
			run: func(c echo.Context, i int64) error {
				panic("down")
			},
			maxAtOnce: 1,
		},
		{
			name: "nok, every run answers 503: one at a time",
			run: func(c echo.Context, i int64) error {
				return c.String(http.StatusServiceUnavailable, "down")
			},
			maxAtOnce: 1,
		},
		{
			name: "nok, every run answers echo.ErrNotFound: slow start",
			run: func(c echo.Context, i int64) error {
				return echo.ErrNotFound
			},
			maxAtOnce: n / 2,
		},
		{
			name: "nok, every answer sets its own cookie: slow start",
			run: func(c echo.Context, i int64) error {
				c.SetCookie(&http.Cookie{Name: "sid", Value: strconv.FormatInt(i, 10)})
				return c.String(http.StatusOK, strconv.FormatInt(i, 10))
			},
			// A turn is added per answer, so at most half the requests
			// run at once.
			maxAtOnce: n / 2, own: true,
		},
		{
			name: "nok, every answer is private: slow start",
			run: func(c echo.Context, i int64) error {
				c.Response().Header().Set(echo.HeaderCacheControl, "private")
				return c.String(http.StatusOK, strconv.FormatInt(i, 10))
			},
			maxAtOnce: n / 2, own: true,
		},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				env.e.Use(middleware.Recover())
				entered := make(chan struct{})
				release := make(chan struct{})
				var running concurrency
				var seq atomic.Int64 // env.calls may have moved on when read
				env.e.GET("/s", env.counted(func(c echo.Context) error {
					running.enter()
					defer running.leave()
					i := seq.Add(1)
					if i == 1 {
						close(entered)
						<-release
					}
					return tt.run(c, i)
				}), env.c.CachedWithConfig(env.cfg(time.Minute)))

				recs := stampede(t, env, n, entered, release)
				want := tt.wantCalls
				if want == 0 {
					want = n
				}
				assert.Equal(t, want, env.calls.Load(), "handler runs")
				assert.LessOrEqual(t, running.max(), tt.maxAtOnce, "most runs at once")
				bodies := map[string]bool{}
				for i, rec := range recs {
					if cookies := rec.Result().Cookies(); len(cookies) > 0 {
						assert.Equal(t, rec.Body.String(), cookies[0].Value, "request %d got its own cookie", i)
					}
					bodies[rec.Body.String()] = true
				}
				if tt.own {
					assert.Len(t, bodies, n, "every request got its own answer")
				}
			})
		}
	})
}

// A leader whose client goes away hands the turn to a waiter, whose page
// the others get.
func TestCachedStampedeLeaderGone(t *testing.T) {
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		env := newRouteEnv(t, open(t))
		entered := make(chan struct{})
		env.e.GET("/s", env.counted(func(c echo.Context) error {
			if env.calls.Load() == 1 {
				close(entered)
				<-c.Request().Context().Done()
				return c.String(http.StatusOK, "partial")
			}
			return c.String(http.StatusOK, "page")
		}), env.c.CachedWithConfig(env.cfg(time.Minute)))
		const n = 10
		waiting := make(chan struct{}, n)
		pagecache.HooksOf(env.c.core()).OnWait = func() { waiting <- struct{}{} }

		ctx, cancel := context.WithCancel(context.Background())
		leaderDone := make(chan struct{})
		go func() {
			defer close(leaderDone)
			env.e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/s", nil).WithContext(ctx))
		}()
		<-entered
		recs := make([]*httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		finished := make(chan struct{}, n)
		for i := range recs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				recs[i] = env.do(http.MethodGet, "/s")
				finished <- struct{}{}
			}()
		}
		awaitWaiting(t, waiting, finished, n)
		cancel()
		<-leaderDone
		wg.Wait()
		assert.Equal(t, int64(2), env.calls.Load())
		for i, rec := range recs {
			assert.Equal(t, "page", rec.Body.String(), "waiter %d", i)
		}
		assert.Equal(t, uint64(1), env.c.Stats().Bypasses[BypassContext])
	})
}

// Coalescing works per variant once the page's Vary is known: cold
// requests of two variants run the handler once per variant, whether the
// handler says Vary or middleware such as Gzip does.
func TestCachedStampedePerVariant(t *testing.T) {
	const n = 50
	tests := []struct {
		name   string
		header string // the request header the variants differ in
		values [2]string
		gzip   bool
	}{
		{name: "ok, Vary: Accept-Language from the handler", header: "Accept-Language", values: [2]string{"en", "fr"}},
		{name: "ok, Vary: Accept-Encoding from middleware.Gzip", header: "Accept-Encoding", values: [2]string{"gzip", "identity"}, gzip: true},
	}
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newRouteEnv(t, open(t))
				if tt.gzip {
					env.e.Use(middleware.Gzip())
				}
				entered := make(chan struct{})
				release := make(chan struct{})
				env.e.GET("/v", env.counted(func(c echo.Context) error {
					if env.calls.Load() == 1 {
						close(entered)
						<-release
					}
					if !tt.gzip {
						c.Response().Header().Set("Vary", tt.header)
					}
					return c.String(http.StatusOK, "page for "+c.Request().Header.Get(tt.header))
				}), env.c.CachedWithConfig(env.cfg(time.Minute)))
				waiting := make(chan struct{}, 2*n)
				pagecache.HooksOf(env.c.core()).OnWait = func() { waiting <- struct{}{} }

				recs := make([]*httptest.ResponseRecorder, n)
				var wg sync.WaitGroup
				finished := make(chan struct{}, n)
				send := func(i int) {
					defer wg.Done()
					recs[i] = env.do(http.MethodGet, "/v", tt.header, tt.values[i%2])
					finished <- struct{}{}
				}
				wg.Add(1)
				go send(0)
				<-entered
				for i := 1; i < n; i++ {
					wg.Add(1)
					go send(i)
				}
				awaitWaiting(t, waiting, finished, n-1)
				close(release)
				wg.Wait()
				assert.Equal(t, int64(2), env.calls.Load(), "one run per variant")
				for i, rec := range recs {
					body := rec.Body.String()
					if rec.Header().Get(echo.HeaderContentEncoding) == "gzip" {
						zr, err := gzip.NewReader(rec.Body)
						require.NoError(t, err)
						b, err := io.ReadAll(zr)
						require.NoError(t, err)
						body = string(b)
					}
					assert.Equal(t, "page for "+tt.values[i%2], body, "request %d", i)
				}
			})
		}
	})
}

// A waiter whose client goes away returns at once; the leader is not
// disturbed.
func TestCachedStampedeWaiterCancelled(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	entered := make(chan struct{})
	release := make(chan struct{})
	env.e.GET("/s", env.counted(func(c echo.Context) error {
		close(entered)
		<-release
		return c.String(http.StatusOK, "leader")
	}), c.CachedWithConfig(env.cfg(time.Minute)))
	waiting := make(chan struct{}, 1)
	pagecache.HooksOf(c.core()).OnWait = func() { waiting <- struct{}{} }

	leaderDone := make(chan *httptest.ResponseRecorder)
	go func() { leaderDone <- env.do(http.MethodGet, "/s") }()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/s", nil).WithContext(ctx)
	waiterDone := make(chan struct{})
	go func() {
		env.e.ServeHTTP(httptest.NewRecorder(), req)
		close(waiterDone)
	}()
	<-waiting
	cancel()
	select {
	case <-waiterDone:
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled waiter is still waiting")
	}
	close(release)
	rec := <-leaderDone
	require.Equal(t, "leader", rec.Body.String())
	assert.Equal(t, StatusHit, env.do(http.MethodGet, "/s").Header().Get("X-Cache"))
}

// A request with Authorization neither waits for a miss of its page nor is
// waited for: it runs the handler for itself at once.
func TestCachedStampedeAuthorization(t *testing.T) {
	forEachMWBackend(t, func(t *testing.T, open func(t *testing.T) *Cache) {
		env := newRouteEnv(t, open(t))
		entered := make(chan struct{})
		release := make(chan struct{})
		env.e.GET("/s", env.counted(func(c echo.Context) error {
			if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
				close(entered)
				<-release
				return c.String(http.StatusOK, "public")
			}
			return c.String(http.StatusOK, "for "+c.Request().Header.Get(echo.HeaderAuthorization))
		}), env.c.CachedWithConfig(env.cfg(time.Minute)))
		pagecache.HooksOf(env.c.core()).OnWait = func() { t.Error("a request waited") }

		leader := make(chan *httptest.ResponseRecorder)
		go func() { leader <- env.do(http.MethodGet, "/s") }()
		<-entered
		for _, user := range []string{"Bearer a", "Bearer b"} {
			rec := env.do(http.MethodGet, "/s", echo.HeaderAuthorization, user)
			assert.Equal(t, "for "+user, rec.Body.String(), "ran at once, for itself")
		}
		close(release)
		assert.Equal(t, "public", (<-leader).Body.String())
		assert.Equal(t, "for Bearer a", env.do(http.MethodGet, "/s", echo.HeaderAuthorization, "Bearer a").Body.String(),
			"nok, a request with Authorization never gets the stored page")
	})
}

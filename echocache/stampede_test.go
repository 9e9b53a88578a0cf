package echocache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stampede runs one leader request, waits until its handler runs, starts
// n-1 more requests, waits until all of them wait for the leader, then lets
// the leader's handler finish. It returns every response, leader first.
func stampede(t *testing.T, env *routeEnv, n int, entered <-chan struct{}, release chan<- struct{}) []*httptest.ResponseRecorder {
	t.Helper()
	waiting := make(chan struct{}, n)
	routeStateOf(env.c).onWait = func() { waiting <- struct{}{} }
	t.Cleanup(func() { routeStateOf(env.c).onWait = nil })

	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		recs[0] = env.do(http.MethodGet, "/s")
	}()
	<-entered
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = env.do(http.MethodGet, "/s")
		}()
	}
	for i := 1; i < n; i++ {
		<-waiting
	}
	close(release)
	wg.Wait()
	return recs
}

func TestCachedStampede(t *testing.T) {
	const n = 8
	tests := []struct {
		name string
		// leader is the first call's behaviour after it is released.
		leader     func(c echo.Context) error
		shared     bool
		leaderCode int
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
			leaderCode: 200,
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
					return c.String(http.StatusOK, "own "+strconv.FormatInt(env.calls.Load(), 10))
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
				assert.Equal(t, int64(n), env.calls.Load(), "every waiter ran the handler itself")
				for i, rec := range recs[1:] {
					assert.Equal(t, http.StatusOK, rec.Code, "waiter %d", i)
					assert.Equal(t, "1", rec.Header().Get("X-Own"), "waiter %d got its own response", i)
					assert.Empty(t, rec.Header().Values("Set-Cookie"), "waiter %d got no cookie", i)
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
	routeStateOf(c).onWait = func() { waiting <- struct{}{} }

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

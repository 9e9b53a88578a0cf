package echocache

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/pagecache"
)

// The stampede behaviour of the route cache (sharing, hand-off, a leader
// or waiter that goes away, variants, Authorization) is tested on every
// front end by the route suite (internal/routetest/stampede.go). These
// helpers serve the Echo-only tests below and the statistics tests.

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

// Coalescing works per variant once the page's Vary is known, also when
// Echo's middleware.Gzip, outside the cache, says Vary. The stampede
// tests of every front end (a handler's Vary included) are the route
// suite's (internal/routetest, stampede*); this one stays here because
// the Vary comes from Echo v4 middleware.
func TestCachedStampedePerVariantGzip(t *testing.T) {
	const n = 50
	tests := []struct {
		name   string
		header string // the request header the variants differ in
		values [2]string
		gzip   bool
	}{
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

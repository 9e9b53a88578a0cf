package echocache

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/pagecache"
)

// twoProcesses builds two Echo apps ("processes") over caches a and b that
// share a store namespace, with one handler whose calls are counted across
// both. The handler's first call blocks until release is closed.
func twoProcesses(t *testing.T, a, b *Cache, lockTimeout time.Duration) (envA, envB *routeEnv, calls *atomic.Int64, entered, release chan struct{}) {
	calls = new(atomic.Int64)
	entered = make(chan struct{})
	release = make(chan struct{})
	h := func(c echo.Context) error {
		n := calls.Add(1)
		if n == 1 {
			close(entered)
			<-release
		}
		return c.String(http.StatusOK, "call "+strconv.FormatInt(n, 10))
	}
	envA, envB = newRouteEnv(t, a), newRouteEnv(t, b)
	for _, env := range []*routeEnv{envA, envB} {
		env.realClock() // the lock wait uses real time
		cfg := env.cfg(time.Minute)
		cfg.LockTimeout = lockTimeout
		env.e.GET("/l", h, env.c.CachedWithConfig(cfg))
	}
	return envA, envB, calls, entered, release
}

func TestCachedCrossProcessLock(t *testing.T) {
	forEachSharedMWBackend(t, func(t *testing.T, a, b *Cache) {
		envA, envB, calls, entered, release := twoProcesses(t, a, b, 10*time.Second)
		waiting := make(chan struct{}, 1)
		pagecache.HooksOf(b.core()).OnWait = func() { waiting <- struct{}{} }

		doneA := make(chan *httptest.ResponseRecorder)
		go func() { doneA <- envA.do(http.MethodGet, "/l") }()
		<-entered
		doneB := make(chan *httptest.ResponseRecorder, 1)
		go func() { doneB <- envB.do(http.MethodGet, "/l") }()
		var recB *httptest.ResponseRecorder
		select {
		case <-waiting: // B found A's lock and waits for the page
		case recB = <-doneB:
			t.Error("B answered while A's handler ran: it did not wait for A's lock")
		}
		close(release)

		recA := <-doneA
		if recB == nil {
			recB = <-doneB
		}
		assert.Equal(t, "call 1", recA.Body.String())
		assert.Equal(t, "call 1", recB.Body.String(), "ok, B got A's page")
		assert.Equal(t, StatusHit, recB.Header().Get("X-Cache"))
		assert.Equal(t, int64(1), calls.Load(), "ok, the handler ran once across processes")
	})
}

func TestCachedCrossProcessLockTimeout(t *testing.T) {
	forEachSharedMWBackend(t, func(t *testing.T, a, b *Cache) {
		envA, envB, calls, entered, release := twoProcesses(t, a, b, 300*time.Millisecond)
		doneA := make(chan *httptest.ResponseRecorder)
		go func() { doneA <- envA.do(http.MethodGet, "/l") }()
		<-entered
		defer func() {
			close(release)
			<-doneA
		}()

		start := time.Now()
		recB := envB.do(http.MethodGet, "/l")
		require.Equal(t, http.StatusOK, recB.Code)
		assert.Equal(t, "call 2", recB.Body.String(), "ok, B ran the handler itself")
		assert.Equal(t, StatusMiss, recB.Header().Get("X-Cache"))
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "B waited for the lock first")
		assert.Equal(t, int64(2), calls.Load())
	})
}

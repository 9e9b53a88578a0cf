package echocache

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/stores"
)

// routeClock is an injectable clock for the middleware tests.
type routeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newRouteClock() *routeClock {
	return &routeClock{now: time.Unix(1_700_000_000, 0)}
}

func (k *routeClock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.now
}

func (k *routeClock) Advance(d time.Duration) {
	k.mu.Lock()
	k.now = k.now.Add(d)
	k.mu.Unlock()
}

// routeEnv is an Echo app whose routes count their calls.
type routeEnv struct {
	t     *testing.T
	c     *Cache
	e     *echo.Echo
	clock *routeClock
	calls atomic.Int64
}

func newRouteEnv(t *testing.T, c *Cache) *routeEnv {
	e := echo.New()
	e.HideBanner = true
	e.Logger.SetOutput(io.Discard)
	env := &routeEnv{t: t, c: c, e: e, clock: newRouteClock()}
	pagecache.HooksOf(c.core()).Now = env.clock.Now // the clock of c's routes
	return env
}

// realClock makes the routes of env's cache compare entries with the
// real time, for tests of what the store itself does over time.
func (env *routeEnv) realClock() { pagecache.HooksOf(env.c.core()).Now = nil }

// cfg returns the default config on env's cache and clock with ttl.
func (env *routeEnv) cfg(ttl time.Duration) RouteConfig {
	cfg := DefaultRouteConfig
	cfg.Cache = env.c
	cfg.TTL = ttl
	return cfg
}

// counted wraps h so that env.calls counts its runs.
func (env *routeEnv) counted(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		env.calls.Add(1)
		return h(c)
	}
}

// do serves one request; hdr holds header name/value pairs.
func (env *routeEnv) do(method, target string, hdr ...string) *httptest.ResponseRecorder {
	env.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		switch hdr[i] {
		case "Host":
			req.Host = hdr[i+1]
			continue
		case "RemoteAddr":
			req.RemoteAddr = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	env.e.ServeHTTP(rec, req)
	// A page goes to a networked store after its response: the tests that
	// read the store or the statistics next see it written. (Not Flush:
	// a test may hold a background refresh.)
	if err := pagecache.FlushWrites(env.t.Context(), env.c.core()); err != nil {
		env.t.Fatalf("Flush: %v", err)
	}
	return rec
}

// textHandler answers with a body that changes on every call.
func (env *routeEnv) textHandler() echo.HandlerFunc {
	return env.counted(func(c echo.Context) error {
		return c.String(http.StatusOK, fmt.Sprintf("page %s #%d", c.Request().URL.Path, env.calls.Load()))
	})
}

var errRouteTest = errors.New("route test error")

var _ = stores.NoExpiry

func httptestRequest() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }

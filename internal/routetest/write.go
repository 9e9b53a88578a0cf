package routetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// writes: a missed page is written to a networked store after its
// response, bounded by MaxPendingWrites, readable by the requests that
// follow in the process until it is written, ordered with invalidations,
// and waited for by Flush; a request waits on the store for one
// StoreTimeout at most in total. Each test runs its requests concurrently
// on a real HTTP server over a real redis behind a real proxy, and ends
// with no goroutine left.
func writes(t *testing.T, fe Frontend) {
	t.Run("ok, responses complete while their writes are stalled", func(t *testing.T) { writeAfterResponse(t, fe) })
	t.Run("nok, past MaxPendingWrites a page is not stored", func(t *testing.T) { writeBacklog(t, fe) })
	t.Run("nok, an invalidation while the handler runs", func(t *testing.T) { invalidatedWhileRunning(t, fe) })
	t.Run("ok, one StoreTimeout per request in total", func(t *testing.T) { requestBudget(t, fe) })
}

// writeEnv is an app on a real HTTP server whose cache's redis is behind
// a fault proxy.
type writeEnv struct {
	t      *testing.T
	fe     Frontend
	c      *echocache.Cache
	proxy  *faultproxy.Proxy
	direct string // the store's URL without the proxy: another process's
	srv    *httptest.Server
	client *http.Client
	calls  atomic.Int64
	hold   atomic.Pointer[func(Ctx)] // run by the handler first, if set
}

// newWriteEnv serves "/p/*" with page, cached for a minute under cfg by a
// Cache whose StoreTimeout is storeTimeout and whose breaker is off. The
// redis client's own timeouts are a minute: a call the proxy stalls waits
// for its context. Goroutines are checked for leaks when the test ends.
func newWriteEnv(t *testing.T, fe Frontend, storeTimeout time.Duration) *writeEnv {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // runs last
	u, err := url.Parse(servertest.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	q := u.Query()
	q.Set("prefix", "routetest-writes-"+hex.EncodeToString(raw[:])+":")
	for _, p := range []string{"read_timeout", "write_timeout"} {
		q.Set(p, "1m")
	}
	q.Set("pool_size", "256")
	u.RawQuery = q.Encode()
	env := &writeEnv{t: t, fe: fe, direct: u.String()}
	env.proxy = faultproxy.Start(t, u.Host)
	u.Host = env.proxy.Addr()
	s, err := stores.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	env.c, err = echocache.NewWithConfig(s, echocache.Config{
		StoreTimeout: storeTimeout, BreakerThreshold: -1,
		Slog: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Nothing is left running: the writes the test left end once the
		// store answers.
		env.proxy.Pass()
		if err := env.c.Flush(context.Background()); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})
	env.srv = httptest.NewServer(env.app(env.c))
	t.Cleanup(env.srv.Close)
	env.client = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(env.client.CloseIdleConnections)
	return env
}

// app returns an app of env's front end whose routes cache in c.
func (env *writeEnv) app(c *echocache.Cache) App {
	app := env.fe.NewApp(env.t, c)
	app.Route("/p/*", Config{TTL: minute}, func(x Ctx) error {
		if h := env.hold.Load(); h != nil {
			(*h)(x)
		}
		return page(env.calls.Add(1), x)
	})
	return app
}

// holdAll makes the next n handlers wait, once they have started, until
// the returned release is called; arrived returns when all n have.
func (env *writeEnv) holdAll(n int, then func(Ctx)) (arrived func(), release func()) {
	var in sync.WaitGroup
	in.Add(n)
	gate := make(chan struct{})
	var count atomic.Int64
	h := func(x Ctx) {
		if count.Add(1) > int64(n) {
			return
		}
		in.Done()
		<-gate
		if then != nil {
			then(x)
		}
	}
	env.hold.Store(&h)
	return in.Wait, func() { close(gate) }
}

// response is what a client received, body read to its end.
type response struct {
	path   string
	status int
	header http.Header
	body   string
	err    error
}

// getAll requests each path at once, each from a goroutine of its own,
// and returns a channel of their responses.
func (env *writeEnv) getAll(paths []string) <-chan response {
	out := make(chan response, len(paths))
	for _, p := range paths {
		go func() {
			r := response{path: p}
			res, err := env.client.Get(env.srv.URL + p)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(res.Body)
				_ = res.Body.Close()
				r.status, r.header, r.body = res.StatusCode, res.Header, string(b)
			}
			r.err = err
			out <- r
		}()
	}
	return out
}

// collect receives n responses. A response that waits on a stalled store
// would take a minute (the store timeout of the tests that stall it): past
// half of that, the test fails rather than hang.
func (env *writeEnv) collect(ch <-chan response, n int, while string) map[string]response {
	env.t.Helper()
	bound := time.NewTimer(30 * time.Second)
	defer bound.Stop()
	got := make(map[string]response, n)
	for len(got) < n {
		select {
		case r := <-ch:
			if r.err != nil {
				env.t.Fatalf("GET %s %s: %v", r.path, while, r.err)
			}
			got[r.path] = r
		case <-bound.C:
			env.t.Fatalf("%s: %d of %d responses did not complete: they wait on the store", while, n-len(got), n)
		}
	}
	return got
}

func pagePaths(n int) []string {
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/p/%d", i)
	}
	return paths
}

// writeAfterResponse: with the store's writes stalled, every miss's
// response is received whole while its write is pending; the requests
// that follow in the process are hits from the pending writes, not new
// runs of the handler; Flush waits for the writes, after which another
// process finds the pages in the store.
func writeAfterResponse(t *testing.T, fe Frontend) {
	const n = 8
	env := newWriteEnv(t, fe, time.Minute)
	arrived, release := env.holdAll(n, nil)
	paths := pagePaths(n)
	ch := env.getAll(paths)
	arrived() // every lookup has been answered; the handlers run
	env.proxy.Stall()
	release()
	first := env.collect(ch, n, "with the store stalled")
	for _, p := range paths {
		r := first[p]
		if r.status != http.StatusOK || !strings.HasPrefix(r.body, "page "+p+" #") {
			t.Errorf("GET %s: status %d, body %q; want the handler's page", p, r.status, r.body)
		}
		// Sent before the write ends: "stored" says the page was handed
		// to its write (pagecache's cachestatus.go).
		if got := cacheStatus(r.header); got != storedMinute {
			t.Errorf("GET %s: Cache-Status %q; want %q", p, got, storedMinute)
		}
	}
	if st := env.c.Stats(); st.Stores != 0 {
		t.Errorf("Stores = %d while the store is stalled; want 0 (the writes cannot have ended)", st.Stores)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := env.c.Flush(gone); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush(cancelled) with %d writes pending = %v; want context.Canceled", n, err)
	}

	again := env.collect(env.getAll(paths), n, "again, with the writes pending")
	for _, p := range paths {
		if r := again[p]; r.header.Get("X-Cache") != "HIT" || r.body != first[p].body {
			t.Errorf("GET %s again: X-Cache %q, body %q; want a hit on %q", p, r.header.Get("X-Cache"), r.body, first[p].body)
		}
	}
	if got := env.calls.Load(); got != n {
		t.Errorf("the handler ran %d times for %d pages requested twice; want %d", got, n, n)
	}

	env.proxy.Pass()
	if err := env.c.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := env.c.Stats(); st.Stores != n {
		t.Errorf("after Flush: Stores = %d; want %d", st.Stores, n)
	}
	other, err := stores.Open(context.Background(), env.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	app := env.app(echocache.New(other))
	for _, p := range paths {
		if rec := Do(app, "", p, "Host", strings.TrimPrefix(env.srv.URL, "http://")); rec.Header().Get("X-Cache") != "HIT" || rec.Body.String() != first[p].body {
			t.Errorf("GET %s in another process: X-Cache %q, body %q; want a hit on %q", p, rec.Header().Get("X-Cache"), rec.Body.String(), first[p].body)
		}
	}
}

// writeBacklog: with MaxPendingWrites writes stalled, the misses past
// them are sent and not stored, counted as write-backlog.
func writeBacklog(t *testing.T, fe Frontend) {
	const over = 4
	n := echocache.MaxPendingWrites + over
	env := newWriteEnv(t, fe, time.Minute)
	arrived, release := env.holdAll(n, nil)
	ch := env.getAll(pagePaths(n))
	arrived()
	env.proxy.Stall()
	release()
	env.collect(ch, n, "with the store stalled")
	if got := env.c.Stats().Bypasses[echocache.BypassWriteBacklog]; got != over {
		t.Errorf("Bypasses[%s] = %d with %d misses and the store stalled; want %d", echocache.BypassWriteBacklog, got, n, over)
	}
	env.proxy.Pass()
	if err := env.c.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := env.c.Stats(); st.Stores != echocache.MaxPendingWrites {
		t.Errorf("after Flush: Stores = %d; want %d", st.Stores, echocache.MaxPendingWrites)
	}
}

// invalidatedWhileRunning: DeletePage, InvalidateTag or Clear called while
// handlers run (after they read their data, before they tag their pages)
// keeps their responses from being stored; the next requests run the
// handler again.
func invalidatedWhileRunning(t *testing.T, fe Frontend) {
	const n = 4
	paths := pagePaths(n)
	for _, tc := range []struct {
		name       string
		invalidate func(ctx context.Context, c *echocache.Cache) error
	}{
		{"DeletePage", func(ctx context.Context, c *echocache.Cache) error {
			for _, p := range paths {
				if err := c.DeletePage(ctx, p); err != nil {
					return err
				}
			}
			return nil
		}},
		{"InvalidateTag", func(ctx context.Context, c *echocache.Cache) error { return c.InvalidateTag(ctx, "news") }},
		{"Clear", func(ctx context.Context, c *echocache.Cache) error { return c.Clear(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newWriteEnv(t, fe, echocache.DefaultStoreTimeout)
			arrived, release := env.holdAll(n, func(x Ctx) { x.Tag("news") })
			ch := env.getAll(paths)
			arrived()
			if err := tc.invalidate(t.Context(), env.c); err != nil {
				t.Fatal(err)
			}
			release()
			env.collect(ch, n, "after "+tc.name)
			if err := env.c.Flush(t.Context()); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			st := env.c.Stats()
			if got := st.Bypasses[echocache.BypassInvalidated]; got != n || st.Stores != 0 {
				t.Errorf("%s during %d handlers: Bypasses[%s] = %d, Stores = %d; want %d and 0", tc.name, n, echocache.BypassInvalidated, got, st.Stores, n)
			}
			env.hold.Store(nil)
			for _, r := range env.collect(env.getAll(paths), n, "the next requests") {
				if got := r.header.Get("X-Cache"); got != "MISS" {
					t.Errorf("GET %s after %s: X-Cache %q; want MISS (the handler runs again)", r.path, tc.name, got)
				}
			}
			if got := env.calls.Load(); got != 2*n {
				t.Errorf("the handler ran %d times; want %d", got, 2*n)
			}
		})
	}
}

// requestBudget: the store calls of a request share one StoreTimeout:
// with the store stalled once the lookup is answered, the handler's first
// call to the cache waits for what is left of it, and the next fails at
// once with ErrBudgetSpent.
func requestBudget(t *testing.T, fe Frontend) {
	const n = 4
	env := newWriteEnv(t, fe, 300*time.Millisecond)
	var mu sync.Mutex
	errs := map[string][2]error{}
	arrived, release := env.holdAll(n, func(x Ctx) {
		ctx := x.Request().Context()
		_, err1 := echocache.Get[string](ctx, env.c, "a"+x.Request().URL.Path, echocache.Strict())
		_, err2 := echocache.Get[string](ctx, env.c, "b"+x.Request().URL.Path, echocache.Strict())
		mu.Lock()
		errs[x.Request().URL.Path] = [2]error{err1, err2}
		mu.Unlock()
	})
	ch := env.getAll(pagePaths(n))
	arrived()
	env.proxy.Stall()
	release()
	env.collect(ch, n, "with the store stalled")
	for _, p := range pagePaths(n) {
		e := errs[p]
		if e[0] == nil || errors.Is(e[0], core.ErrBudgetSpent) {
			t.Errorf("GET %s: the handler's first Get with the store stalled = %v; want it to wait for the budget's rest and fail", p, e[0])
		}
		if !errors.Is(e[1], core.ErrBudgetSpent) {
			t.Errorf("GET %s: the handler's second Get = %v; want ErrBudgetSpent (one StoreTimeout per request)", p, e[1])
		}
	}
}

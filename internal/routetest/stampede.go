package routetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// Stampede protection: concurrent misses of one page variant run the
// handler once and share its page when it can be shared; when it cannot,
// the waiters take turns, and nobody ever gets another request's answer.

var errHandler = errors.New("route test error")

// recovering answers a panic of h with a 500, as recovery middleware
// outside the cache (Echo's middleware.Recover) does.
func recovering(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// flock is one stampede's requests: a leader whose handler holds until
// release, and the requests that wait for it.
type flock struct {
	t       *testing.T
	h       http.Handler
	waiting chan struct{}
}

func newFlock(t *testing.T, c *echocache.Cache, h http.Handler, n int) *flock {
	f := &flock{t: t, h: h, waiting: make(chan struct{}, 2*n)}
	hooks := pagecache.HooksOf((*core.Cache)(c))
	hooks.OnWait = func() { f.waiting <- struct{}{} }
	t.Cleanup(func() { hooks.OnWait = nil })
	return f
}

// run sends the leader, waits until its handler runs (entered), sends n-1
// more requests (hdr(i) gives request i's header pairs), waits until all
// of them wait for the leader, then releases the leader. It returns every
// response, leader first.
func (f *flock) run(n int, target string, hdr func(i int) []string, entered <-chan struct{}, release chan<- struct{}) []*httptest.ResponseRecorder {
	f.t.Helper()
	if hdr == nil {
		hdr = func(int) []string { return nil }
	}
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	wg.Go(func() { recs[0] = Do(f.h, "", target, hdr(0)...) })
	<-entered
	finished := make(chan struct{}, n)
	for i := 1; i < n; i++ {
		wg.Go(func() {
			recs[i] = Do(f.h, "", target, hdr(i)...)
			finished <- struct{}{}
		})
	}
	f.await(finished, n-1)
	close(release)
	wg.Wait()
	return recs
}

// await receives want signals on the OnWait hook, one per request that
// waits for the leader. A request that ends first (a signal on finished)
// did not wait: the test fails, and goes on rather than waiting for a
// signal that will not come.
func (f *flock) await(finished <-chan struct{}, want int) {
	f.t.Helper()
	for got := 0; got < want; {
		select {
		case <-f.waiting:
			got++
		case <-finished:
			f.t.Errorf("a request ended while the leader's handler ran: %d of %d waited", got, want)
			return
		}
	}
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

// writeText writes body with code, as text/plain.
func writeText(c Ctx, code int, body string) error {
	c.Response().Header().Set("Content-Type", "text/plain; charset=UTF-8")
	c.Response().WriteHeader(code)
	_, err := fmt.Fprint(c.Response(), body)
	return err
}

// stampedeShare: the leader's answer is shared with its waiters when it
// can be; when it cannot, no waiter gets it: after a failure (a 500, an
// error, a panic) the turn passes to one waiter, whose page the others
// get; after an answer that is not shared by its nature (a cookie) every
// waiter runs for itself.
func stampedeShare(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	const n = 8
	for _, tt := range []struct {
		name       string
		leader     func(c Ctx) error // the first call's behaviour after it is released
		shared     bool
		leaderCode int
		// private: the leader's answer was whole but its own, so every
		// waiter is released to run for itself.
		private bool
	}{
		{name: "ok, a cacheable response is shared", leader: func(c Ctx) error { return writeText(c, http.StatusOK, "leader") }, shared: true, leaderCode: 200},
		{name: "nok, a response with Set-Cookie is not shared", leader: func(c Ctx) error {
			c.Response().Header().Add("Set-Cookie", "sid=leader-secret")
			return writeText(c, http.StatusOK, "leader")
		}, leaderCode: 200, private: true},
		{name: "nok, a 500 is not shared", leader: func(c Ctx) error { return writeText(c, http.StatusInternalServerError, "leader") }, leaderCode: 500},
		{name: "nok, an error is not shared", leader: func(Ctx) error { return errHandler }, leaderCode: 500},
		{name: "nok, a panic is not shared and wedges nobody", leader: func(Ctx) error { panic("leader panics") }, leaderCode: 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			entered, release := make(chan struct{}), make(chan struct{})
			var calls atomic.Int64
			app.Route("/s", Config{TTL: minute}, func(x Ctx) error {
				if calls.Add(1) == 1 {
					close(entered)
					<-release
					return tt.leader(x)
				}
				x.Response().Header().Set("X-Own", "1")
				return writeText(x, http.StatusOK, "own")
			})
			recs := newFlock(t, c, recovering(app), n).run(n, "/s", nil, entered, release)
			if recs[0].Code != tt.leaderCode {
				t.Errorf("the leader's status %d; want %d", recs[0].Code, tt.leaderCode)
			}
			if tt.shared {
				if got := calls.Load(); got != 1 {
					t.Errorf("the handler ran %d times; want once", got)
				}
				for i, rec := range recs[1:] {
					if rec.Body.String() != "leader" || rec.Header().Get("X-Cache") != "HIT" {
						t.Errorf("waiter %d: body %q, X-Cache %q; want the leader's page, HIT", i, rec.Body.String(), rec.Header().Get("X-Cache"))
					}
				}
				return
			}
			want := int64(2)
			if tt.private {
				want = n
			}
			if got := calls.Load(); got != want {
				t.Errorf("the handler ran %d times; want %d", got, want)
			}
			for i, rec := range recs[1:] {
				if rec.Code != http.StatusOK || rec.Body.String() != "own" || rec.Header().Get("X-Own") != "1" {
					t.Errorf("waiter %d: status %d, body %q, X-Own %q; want a waiter's response", i, rec.Code, rec.Body.String(), rec.Header().Get("X-Own"))
				}
				if v := rec.Header().Values("Set-Cookie"); len(v) > 0 {
					t.Errorf("waiter %d got a cookie: %v", i, v)
				}
			}
		})
	}
}

// stampedeHandoff: after a leader whose answer cannot be shared, its
// waiters do not queue behind one another. A failure (a panic behind
// recovery middleware, an error, a 5xx) hands the turn to one waiter, so
// that a failing backend does not get them all at once; when that one
// fails too, the rest are released together. A whole answer of the
// request's own (a 404 error, a cookie, private) releases every waiter at
// once. Nobody ever gets another request's cookie.
func stampedeHandoff(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	const n = 50
	for _, tt := range []struct {
		name      string
		run       func(c Ctx, i int64) error // call number i's behaviour (the leader is call 1)
		wantCalls int64                      // 0: n
		// serial is how many runs come one after the other (the leader's
		// and the waiter's the turn is handed to); the runs after them
		// must all be under way at once.
		serial int64
		own    bool // every request gets an answer of its own
	}{
		{name: "ok, the leader panics, the next runner's page is shared", run: func(c Ctx, i int64) error {
			if i == 1 {
				panic("leader panics")
			}
			return writeText(c, http.StatusOK, "page")
		}, wantCalls: 2, serial: 2},
		{name: "ok, the leader errs, the next runner's page is shared", run: func(c Ctx, i int64) error {
			if i == 1 {
				return errHandler
			}
			return writeText(c, http.StatusOK, "page")
		}, wantCalls: 2, serial: 2},
		{name: "nok, every run panics: one waiter, then the rest at once", run: func(Ctx, int64) error { panic("down") }, serial: 2},
		{name: "nok, every run answers 503: one waiter, then the rest at once", run: func(c Ctx, _ int64) error {
			return writeText(c, http.StatusServiceUnavailable, "down")
		}, serial: 2},
		{name: "nok, every run answers a 404 error: all at once", run: func(Ctx, int64) error { return StatusError(http.StatusNotFound) }, serial: 1},
		{name: "nok, every answer sets its own cookie: all at once", run: func(c Ctx, i int64) error {
			c.Response().Header().Add("Set-Cookie", "sid="+strconv.FormatInt(i, 10))
			return writeText(c, http.StatusOK, strconv.FormatInt(i, 10))
		}, serial: 1, own: true},
		{name: "nok, every answer is private: all at once", run: func(c Ctx, i int64) error {
			c.Response().Header().Set("Cache-Control", "private")
			return writeText(c, http.StatusOK, strconv.FormatInt(i, 10))
		}, serial: 1, own: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			entered, release := make(chan struct{}), make(chan struct{})
			serialDone, together := make(chan struct{}), newBarrier(n-int(tt.serial))
			var seq atomic.Int64
			app.Route("/s", Config{TTL: minute}, func(x Ctx) error {
				i := seq.Add(1)
				if i == 1 {
					close(entered)
					<-release
				}
				if i <= tt.serial {
					if i == tt.serial {
						defer close(serialDone)
					}
					return tt.run(x, i)
				}
				select {
				case <-serialDone:
				default:
					t.Errorf("run %d began before run %d ended", i, tt.serial)
				}
				if !together.arrive() {
					t.Errorf("run %d: the %d runs after the first %d were not under way at once", i, n-tt.serial, tt.serial)
				}
				return tt.run(x, i)
			})
			recs := newFlock(t, c, recovering(app), n).run(n, "/s", nil, entered, release)
			want := tt.wantCalls
			if want == 0 {
				want = n
			}
			if got := seq.Load(); got != want {
				t.Errorf("the handler ran %d times; want %d", got, want)
			}
			bodies := map[string]bool{}
			for i, rec := range recs {
				if cookies := rec.Result().Cookies(); len(cookies) > 0 && cookies[0].Value != rec.Body.String() {
					t.Errorf("request %d: cookie %q with body %q; want its own cookie", i, cookies[0].Value, rec.Body.String())
				}
				bodies[rec.Body.String()] = true
			}
			if tt.own && len(bodies) != n {
				t.Errorf("%d answers told apart for %d requests; want every request's own", len(bodies), n)
			}
		})
	}
}

// barrier lets n callers through once all of them have arrived.
type barrier struct {
	n      atomic.Int64
	all    chan struct{}
	once   sync.Once
	broken atomic.Bool
}

func newBarrier(n int) *barrier {
	b := &barrier{all: make(chan struct{})}
	b.n.Store(int64(n))
	if n <= 0 {
		close(b.all)
	}
	return b
}

// barrierBound bounds the wait at a barrier: far above the time the
// callers take to arrive on a loaded machine, it only ends a test whose
// callers cannot all arrive (they queue behind one another).
const barrierBound = 20 * time.Second

// arrive counts the caller in and waits for the others; it reports false
// when they did not all arrive within barrierBound, after which the
// barrier is broken and lets every caller through at once, reporting
// false.
func (b *barrier) arrive() bool {
	if b.n.Add(-1) == 0 {
		b.once.Do(func() { close(b.all) })
	}
	select {
	case <-b.all:
	case <-time.After(barrierBound):
		b.broken.Store(true)
		b.once.Do(func() { close(b.all) })
	}
	return !b.broken.Load()
}

// stampedeLeaderGone: a leader whose client goes away hands the turn to a
// waiter, whose page the others get.
func stampedeLeaderGone(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	c := open(t)
	app := fe.NewApp(t, c)
	entered := make(chan struct{})
	var calls atomic.Int64
	app.Route("/s", Config{TTL: minute}, func(x Ctx) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-x.Request().Context().Done()
			return writeText(x, http.StatusOK, "partial")
		}
		return writeText(x, http.StatusOK, "page")
	})
	const n = 10
	f := newFlock(t, c, app, n)
	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		app.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/s", nil).WithContext(ctx))
	}()
	<-entered
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	finished := make(chan struct{}, n)
	for i := range recs {
		wg.Go(func() {
			recs[i] = Do(app, "", "/s")
			finished <- struct{}{}
		})
	}
	f.await(finished, n)
	cancel()
	<-leaderDone
	wg.Wait()
	if got := calls.Load(); got != 2 {
		t.Errorf("the handler ran %d times; want 2 (the leader, one waiter)", got)
	}
	for i, rec := range recs {
		if rec.Body.String() != "page" {
			t.Errorf("waiter %d: body %q; want the waiter's page", i, rec.Body.String())
		}
	}
	settle(t, c)
	if got := c.Stats().Bypasses[echocache.BypassContext]; got != 1 {
		t.Errorf("bypasses %v; want one of %s", c.Stats().Bypasses, echocache.BypassContext)
	}
}

// stampedePerVariant: once the page's Vary is known, cold requests of two
// variants run the handler once per variant.
func stampedePerVariant(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	const n = 50
	c := open(t)
	app := fe.NewApp(t, c)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	app.Route("/v", Config{TTL: minute}, func(x Ctx) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		x.Response().Header().Set("Vary", "Accept-Language")
		return writeText(x, http.StatusOK, "page for "+x.Request().Header.Get("Accept-Language"))
	})
	values := [2]string{"en", "fr"}
	recs := newFlock(t, c, app, n).run(n, "/v", func(i int) []string { return []string{"Accept-Language", values[i%2]} }, entered, release)
	if got := calls.Load(); got != 2 {
		t.Errorf("the handler ran %d times; want one run per variant", got)
	}
	for i, rec := range recs {
		if want := "page for " + values[i%2]; rec.Body.String() != want {
			t.Errorf("request %d: body %q; want %q", i, rec.Body.String(), want)
		}
	}
}

// stampedeWaiterCancelled: a waiter whose client goes away returns at
// once; the leader is not disturbed.
func stampedeWaiterCancelled(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	c := open(t)
	app := fe.NewApp(t, c)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	app.Route("/s", Config{TTL: minute}, func(x Ctx) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return writeText(x, http.StatusOK, "leader")
	})
	f := newFlock(t, c, app, 1)
	leaderDone := make(chan *httptest.ResponseRecorder)
	go func() { leaderDone <- Do(app, "", "/s") }()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	waiterDone := make(chan struct{})
	go func() {
		app.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/s", nil).WithContext(ctx))
		close(waiterDone)
	}()
	<-f.waiting
	cancel()
	select {
	case <-waiterDone:
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled waiter is still waiting")
	}
	close(release)
	if rec := <-leaderDone; rec.Body.String() != "leader" {
		t.Fatalf("the leader's body %q; want its page", rec.Body.String())
	}
	settle(t, c)
	if rec := Do(app, "", "/s"); rec.Header().Get("X-Cache") != "HIT" {
		t.Errorf("then: X-Cache %q; want HIT, the leader's page stored", rec.Header().Get("X-Cache"))
	}
}

// stampedeAuthorization: a request with Authorization neither waits for a
// miss of its page nor is waited for: it runs the handler for itself at
// once, and never gets the stored page.
func stampedeAuthorization(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	c := open(t)
	app := fe.NewApp(t, c)
	entered, release := make(chan struct{}), make(chan struct{})
	app.Route("/s", Config{TTL: minute}, func(x Ctx) error {
		if auth := x.Request().Header.Get("Authorization"); auth != "" {
			return writeText(x, http.StatusOK, "for "+auth)
		}
		close(entered)
		<-release
		return writeText(x, http.StatusOK, "public")
	})
	hooks := pagecache.HooksOf((*core.Cache)(c))
	hooks.OnWait = func() { t.Error("a request waited") }
	t.Cleanup(func() { hooks.OnWait = nil })

	leader := make(chan *httptest.ResponseRecorder)
	go func() { leader <- Do(app, "", "/s") }()
	<-entered
	for _, user := range []string{"Bearer a", "Bearer b"} {
		if rec := Do(app, "", "/s", "Authorization", user); rec.Body.String() != "for "+user {
			t.Errorf("with Authorization %q: body %q; want its own answer, at once", user, rec.Body.String())
		}
	}
	close(release)
	if rec := <-leader; rec.Body.String() != "public" {
		t.Errorf("the leader's body %q; want public", rec.Body.String())
	}
	settle(t, c)
	if rec := Do(app, "", "/s", "Authorization", "Bearer a"); rec.Body.String() != "for Bearer a" {
		t.Errorf("with Authorization after the page was stored: body %q; want its own answer, never the stored page", rec.Body.String())
	}
}

// stampedePassMark: once a page's answer could not be shared by its nature
// (private), concurrent misses of the page neither wait for one another
// nor are waited for, for a while (hit-for-pass): k requests all run the
// handler at once, and none waits.
func stampedePassMark(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	const k = 8
	c := open(t)
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	together := newBarrier(k)
	app.Route("/s", Config{TTL: minute}, func(x Ctx) error {
		if calls.Add(1) > 1 && !together.arrive() {
			t.Errorf("the %d requests after a private answer did not run at once", k)
		}
		x.Response().Header().Set("Cache-Control", "private")
		return writeText(x, http.StatusOK, "own")
	})
	if rec := Do(app, "", "/s"); rec.Body.String() != "own" {
		t.Fatalf("first request: body %q; want own", rec.Body.String())
	}
	hooks := pagecache.HooksOf((*core.Cache)(c))
	var waited atomic.Int64
	hooks.OnWait = func() { waited.Add(1) }
	t.Cleanup(func() { hooks.OnWait = nil })
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() {
			if rec := Do(app, "", "/s"); rec.Body.String() != "own" {
				t.Errorf("body %q; want own", rec.Body.String())
			}
		})
	}
	wg.Wait()
	if got := waited.Load(); got != 0 {
		t.Errorf("%d requests waited for another's private answer; want none", got)
	}
	if got := calls.Load(); got != k+1 {
		t.Errorf("the handler ran %d times; want %d", got, k+1)
	}
}

// lockPass: with LockTimeout, a request of another process (another Cache
// on the same store) waiting for the lock's holder stops waiting as soon
// as the holder's answer is known not to be stored, and runs the handler
// itself, rather than waiting the whole LockTimeout.
func lockPass(t *testing.T, fe Frontend) {
	const lockTimeout = time.Minute // the wait the requests must not sit out
	for _, tt := range []struct {
		name   string
		answer func(c Ctx) error
		code   int
	}{
		{name: "nok, private", answer: func(c Ctx) error {
			c.Response().Header().Set("Cache-Control", "private")
			return writeText(c, http.StatusOK, "leader")
		}, code: http.StatusOK},
		{name: "nok, 500", answer: func(c Ctx) error { return writeText(c, http.StatusInternalServerError, "leader") }, code: http.StatusInternalServerError},
		{name: "nok, a 404 error", answer: func(Ctx) error { return StatusError(http.StatusNotFound) }, code: http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, "redis")
			procs := []*echocache.Cache{echocache.New(s), echocache.New(s)}
			entered, release := make(chan struct{}), make(chan struct{})
			var calls atomic.Int64
			apps := make([]App, len(procs))
			for i, c := range procs {
				apps[i] = fe.NewApp(t, c)
				apps[i].Route("/s", Config{TTL: minute, StaleIfError: minute, LockTimeout: lockTimeout}, func(x Ctx) error {
					if calls.Add(1) == 1 {
						close(entered)
						<-release
						return tt.answer(x)
					}
					x.Response().Header().Set("Cache-Control", "private")
					return writeText(x, http.StatusOK, "own")
				})
			}
			waiting := make(chan struct{}, 1)
			hooks := pagecache.HooksOf((*core.Cache)(procs[1]))
			hooks.OnWait = func() { waiting <- struct{}{} }
			t.Cleanup(func() { hooks.OnWait = nil })

			leader := make(chan *httptest.ResponseRecorder)
			go func() { leader <- Do(apps[0], "", "/s") }()
			<-entered
			other := make(chan *httptest.ResponseRecorder)
			var took time.Duration
			go func() {
				start := time.Now()
				rec := Do(apps[1], "", "/s")
				took = time.Since(start)
				other <- rec
			}()
			<-waiting // the other process waits for the lock's holder
			close(release)
			if rec := <-leader; rec.Code != tt.code {
				t.Errorf("the leader's status %d; want %d", rec.Code, tt.code)
			}
			rec := <-other
			if rec.Body.String() != "own" {
				t.Errorf("the other process's request: body %q; want its own answer", rec.Body.String())
			}
			if took >= lockTimeout/2 {
				t.Errorf("the other process's request took %v; want it to stop waiting once the holder's answer was not stored, not sit out LockTimeout (%v)", took, lockTimeout)
			}
			if got := calls.Load(); got != 2 {
				t.Errorf("the handler ran %d times; want 2", got)
			}
		})
	}
}

package routetest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/syncbuf"
	"github.com/echocache/echocache/stores"
)

// What the cache tells its logger and observers about a route: entries
// that do not open, and background refreshes that fail.

// flipStore is a store whose reads, while flip is set, return the stored
// bytes with the first one changed: every record read (flipAll), or only
// the records of variants (flipVariants: keys holding a NUL, see
// internal/pagecache/keys.go), is corrupt.
type flipStore struct {
	stores.Store
	flip atomic.Int32
}

const (
	flipNone = iota
	flipAll
	flipVariants
)

func (s *flipStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Store.Get(ctx, key)
	mode := s.flip.Load()
	if err != nil || len(b) == 0 || mode == flipNone || mode == flipVariants && !strings.Contains(key, "\x00") {
		return b, err
	}
	b = append([]byte(nil), b...)
	b[0] ^= 0xff
	return b, nil
}

// lookupLog is an Observer that keeps the lookup events.
type lookupLog struct {
	echocache.NopObserver
	mu  sync.Mutex
	evs []echocache.LookupEvent
}

func (o *lookupLog) Lookup(_ context.Context, ev echocache.LookupEvent) {
	o.mu.Lock()
	o.evs = append(o.evs, ev)
	o.mu.Unlock()
}

func (o *lookupLog) events() []echocache.LookupEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]echocache.LookupEvent(nil), o.evs...)
}

// loggedCache returns a cache over s whose lines go to the buffer it
// returns, and the observer of its lookups.
func loggedCache(t *testing.T, s stores.Store) (*echocache.Cache, *syncbuf.Buffer, *lookupLog) {
	t.Helper()
	var buf syncbuf.Buffer
	obs := &lookupLog{}
	c, err := echocache.NewWithConfig(s, echocache.Config{
		Slog:     slog.New(slog.NewTextHandler(&buf, nil)),
		Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, &buf, obs
}

// corruptEntries: a page record that does not open is logged, counted,
// deleted and a miss that says detail=corrupt, for the page record and
// for a variant's.
func corruptEntries(t *testing.T, fe Frontend) {
	mem, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := &flipStore{Store: mem}
	c, buf, obs := loggedCache(t, s)
	newClock(c)
	app := fe.NewApp(t, c)
	var calls atomic.Int64
	app.Route("/p", Config{TTL: minute}, func(ctx Ctx) error { return page(calls.Add(1), ctx) })
	app.Route("/v", Config{TTL: minute}, func(ctx Ctx) error {
		ctx.Response().Header().Set("Vary", "Accept-Language")
		return page(calls.Add(1), ctx)
	})
	step := func(target, wantCS, wantBody string, hdr ...string) {
		t.Helper()
		rec := Do(app, "", target, hdr...)
		if got := cacheStatus(rec.Header()); got != wantCS {
			t.Errorf("GET %s %v: Cache-Status %q; want %q", target, hdr, got, wantCS)
		}
		if rec.Code != http.StatusOK || rec.Body.String() != wantBody {
			t.Errorf("GET %s %v: status %d, body %q; want 200 and %q", target, hdr, rec.Code, rec.Body.String(), wantBody)
		}
		settle(t, c) // the page's write follows its response
	}
	step("/p", storedMinute, "page /p #1")
	s.flip.Store(flipAll)
	step("/p", cs("fwd=uri-miss; ttl=60; stored; detail=corrupt"), "page /p #2")
	s.flip.Store(flipNone)
	step("/p", hitMinute, "page /p #2") // the corrupt record was replaced

	if got := c.Stats().CorruptEntries; got != 1 {
		t.Errorf("Stats().CorruptEntries = %d; want 1", got)
	}
	if got, want := c.Stats().Pages, (echocache.FeatureStats{Hits: 1, Misses: 2}); got != want {
		t.Errorf("Stats().Pages = %+v; want %+v", got, want)
	}
	var corrupt int
	for _, ev := range obs.events() {
		if ev.Detail == echocache.DetailCorrupt {
			corrupt++
			if ev.Feature != echocache.FeaturePage || ev.Result != echocache.ResultMiss {
				t.Errorf("lookup event %+v; want a page miss", ev)
			}
		}
	}
	if corrupt != 1 {
		t.Errorf("%d lookup events with detail %q; want 1 (events: %+v)", corrupt, echocache.DetailCorrupt, obs.events())
	}
	if log := buf.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "dropping corrupt page entry") {
		t.Errorf("log %q; want a warning that the corrupt page entry was dropped", log)
	}

	// A variant's record, read after the page record opened.
	step("/v", storedMinute, "page /v #3", "Accept-Language", "en")
	step("/v", cs("fwd=vary-miss; ttl=60; stored"), "page /v #4", "Accept-Language", "fr")
	s.flip.Store(flipVariants)
	step("/v", cs("fwd=vary-miss; ttl=60; stored; detail=corrupt"), "page /v #5", "Accept-Language", "fr")
	s.flip.Store(flipNone)
	step("/v", hitMinute, "page /v #3", "Accept-Language", "en") // the page record was not touched
	step("/v", hitMinute, "page /v #5", "Accept-Language", "fr")
	if got := c.Stats().CorruptEntries; got != 2 {
		t.Errorf("after a corrupt variant: Stats().CorruptEntries = %d; want 2", got)
	}
}

// failedRefreshes: a background refresh whose handler fails, or whose
// answer is not stored, is logged; the stale page stays until it expires.
func failedRefreshes(t *testing.T, fe Frontend) {
	for _, tc := range []struct {
		name    string
		fail    func(c Ctx) error
		wantLog string // the lines allowed, separated by " | "
	}{
		// Echo hands the error to its error handler after the middleware;
		// a net/http handler answers it itself, with a 500.
		{"nok, the handler returns an error", func(Ctx) error { return errors.New("backend down") },
			"background refresh of /p: backend down | background refresh of /p not stored: status (status 500)"},
		{"nok, the answer is not stored", func(c Ctx) error { return status(http.StatusBadGateway)(0, c) }, "background refresh of /p not stored: status (status 502)"},
		{"nok, the handler panics", func(Ctx) error { panic("refresh panics") }, "background refresh of /p panicked: refresh panics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := stores.NewMemory(stores.MemoryConfig{})
			if err != nil {
				t.Fatal(err)
			}
			c, buf, _ := loggedCache(t, mem)
			k := newClock(c)
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			app.Route("/p", Config{TTL: minute, StaleWhileRevalidate: time.Hour}, func(ctx Ctx) error {
				if n := calls.Add(1); n > 1 {
					return tc.fail(ctx)
				}
				return page(1, ctx)
			})
			Do(app, "", "")
			settle(t, c)
			k.Advance(2 * minute)
			if rec := Do(app, "", ""); rec.Header().Get("X-Cache") != "STALE" || rec.Body.String() != "page /p #1" {
				t.Fatalf("after the TTL: X-Cache %q, body %q; want STALE and the first page", rec.Header().Get("X-Cache"), rec.Body.String())
			}
			settle(t, c) // Flush waits for the refresh
			if got := calls.Load(); got != 2 {
				t.Fatalf("the handler ran %d times; want 2 (the page, its refresh)", got)
			}
			log := buf.String()
			found := false
			for _, want := range strings.Split(tc.wantLog, " | ") {
				found = found || strings.Contains(log, want)
			}
			if !found || !strings.Contains(log, "level=WARN") {
				t.Errorf("log %q; want a warning %q", log, tc.wantLog)
			}
			if rec := Do(app, "", ""); rec.Header().Get("X-Cache") != "STALE" || rec.Body.String() != "page /p #1" {
				t.Errorf("after the failed refresh: X-Cache %q, body %q; want STALE and the first page", rec.Header().Get("X-Cache"), rec.Body.String())
			}
		})
	}
}

package echocache

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// lookupLog is an Observer that keeps the lookups it is told of.
type lookupLog struct {
	NopObserver
	mu sync.Mutex
	ev []LookupEvent
}

func (l *lookupLog) Lookup(_ context.Context, ev LookupEvent) {
	l.mu.Lock()
	l.ev = append(l.ev, ev)
	l.mu.Unlock()
}

func (l *lookupLog) events() []LookupEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LookupEvent(nil), l.ev...)
}

// A lookup the store could not answer is a miss and an error, with the
// reason: the store's error, then, once the breaker opens, the breaker.
func TestStatsFailedLookupIsMissAndError(t *testing.T) {
	s := newMWTestStore()
	s.local = false
	s.setFail(errMWStoreDown)
	obs := &lookupLog{}
	c, err := NewWithConfig(s, Config{BreakerThreshold: 2, Observer: obs, Logger: LoggerFunc(func(string, ...any) {})})
	require.NoError(t, err)
	c.core().SetProbeInterval(time.Hour)
	env := newRouteEnv(t, c)
	env.e.GET("/f", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	ctx := context.Background()

	for range 3 {
		require.Equal(t, http.StatusOK, env.do(http.MethodGet, "/f").Code)
	}
	_, err = Get[string](ctx, c, "k")
	require.ErrorIs(t, err, ErrNotFound)

	st := c.Stats()
	assert.Equal(t, FeatureStats{Misses: 3, Errors: 3}, st.Pages, "pages")
	assert.Equal(t, FeatureStats{Misses: 1, Errors: 1}, st.Values, "values")
	assert.Equal(t, uint64(4), st.Misses)
	assert.Equal(t, uint64(4), st.LookupErrors)
	assert.Zero(t, st.Hits)
	assert.True(t, st.BreakerOpen)

	var details []BypassReason
	for _, ev := range obs.events() {
		require.Equal(t, ResultError, ev.Result)
		details = append(details, ev.Detail)
	}
	// The lookup of a page reads the store once; the breaker opens after
	// the second failure.
	assert.Equal(t, []BypassReason{DetailStoreError, DetailStoreError, DetailStoreUnavailable, DetailStoreUnavailable}, details)
}

// Every feature counts its own lookups, one result each, and the totals
// are their sums.
func TestStatsByFeature(t *testing.T) {
	mem, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	c := New(mem)
	env := newRouteEnv(t, c)
	env.e.Match([]string{http.MethodGet, http.MethodPost}, "/p", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	ctx := context.Background()

	env.do(http.MethodGet, "/p")  // miss
	env.do(http.MethodGet, "/p")  // hit
	env.do(http.MethodPost, "/p") // bypass

	_, _ = Get[int](ctx, c, "v") // miss
	require.NoError(t, Set(ctx, c, "v", 1, time.Minute))
	_, _ = Get[int](ctx, c, "v") // hit

	calls := 0
	m := Memoize(c, "double", time.Minute, func(_ context.Context, n int) (int, error) { calls++; return 2 * n, nil })
	for range 3 {
		v, err := m.Get(ctx, 4) // miss, hit, hit
		require.NoError(t, err)
		require.Equal(t, 8, v)
	}
	require.Equal(t, 1, calls)

	_, err = c.core().GetFragment(ctx, "f:x") // miss
	require.ErrorIs(t, err, stores.ErrNotFound)

	st := c.Stats()
	assert.Equal(t, FeatureStats{Hits: 1, Misses: 1, Bypasses: 1}, st.Pages, "pages")
	assert.Equal(t, FeatureStats{Hits: 1, Misses: 1}, st.Values, "values")
	assert.Equal(t, FeatureStats{Hits: 2, Misses: 1}, st.Memoize, "memoize")
	assert.Equal(t, FeatureStats{Misses: 1}, st.Fragments, "fragments")
	assert.Equal(t, uint64(4), st.Hits)
	assert.Equal(t, uint64(4), st.Misses)
	assert.Equal(t, uint64(1), st.Bypasses[BypassMethod])
	assert.Equal(t, st.Memoize, st.Feature(FeatureMemoize))
	assert.Equal(t, uint64(3), st.Memoize.Lookups())
	require.NotNil(t, st.Store, "a memory store reports its fill")
	assert.Positive(t, st.Store.Entries)
	assert.Positive(t, st.Store.Bytes)
	assert.Equal(t, int64(stores.DefaultMemoryMaxBytes), st.Store.MaxBytes)
}

// A GetOrSet that misses is counted once, not once more when its shared
// loader call looks the key up again.
func TestStatsLoaderMissCountedOnce(t *testing.T) {
	mem, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	c := New(mem)
	ctx := context.Background()
	for range 2 {
		v, err := GetOrSet(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "v", nil })
		require.NoError(t, err)
		require.Equal(t, "v", v)
	}
	assert.Equal(t, FeatureStats{Hits: 1, Misses: 1}, c.Stats().Values)
}

// Concurrent misses of one page that wait for the first one's handler are
// misses that were coalesced: the handler ran once for all of them.
func TestStatsCoalescedPages(t *testing.T) {
	mem, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	c := New(mem)
	env := newRouteEnv(t, c)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	env.e.GET("/s", env.counted(func(ec echo.Context) error {
		once.Do(func() { close(entered) })
		<-release
		return ec.String(http.StatusOK, "page")
	}), c.CachedWithConfig(env.cfg(time.Minute)))
	const n = 6
	recs := stampede(t, env, n, entered, release)
	for _, rec := range recs {
		require.Equal(t, "page", rec.Body.String())
	}
	require.Equal(t, int64(1), env.calls.Load())
	st := c.Stats()
	assert.Equal(t, FeatureStats{Misses: n, Coalesced: n - 1}, st.Pages)
	assert.Equal(t, uint64(n-1), st.Coalesced)
}

// A stale-if-error page served in place of a failure counts as one stale
// lookup, not as a miss too; a refresh that succeeds is one miss.
func TestStatsStaleIfErrorCountsOnce(t *testing.T) {
	mem, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	c := New(mem)
	env := newRouteEnv(t, c)
	var fail bool
	env.e.GET("/e", env.counted(func(ec echo.Context) error {
		if fail {
			return errors.New("backend down")
		}
		return ec.String(http.StatusOK, "page")
	}), func() echo.MiddlewareFunc {
		cfg := env.cfg(10 * time.Second)
		cfg.StaleIfError = time.Minute
		return c.CachedWithConfig(cfg)
	}())
	env.do(http.MethodGet, "/e") // miss
	env.clock.Advance(20 * time.Second)
	fail = true
	rec := env.do(http.MethodGet, "/e") // stale, in place of the failure
	require.Equal(t, StatusStale, rec.Header().Get("X-Cache"))
	fail = false
	env.do(http.MethodGet, "/e") // a miss whose handler succeeds
	assert.Equal(t, FeatureStats{Misses: 2, StaleHits: 1}, c.Stats().Pages)
}

// core.Features and the FeatureStats fields of Stats name the same
// features, in the same order.
func TestStatsFeatureOrder(t *testing.T) {
	var st Stats
	st.Pages.Hits, st.Values.Hits, st.Memoize.Hits, st.Fragments.Hits = 1, 2, 3, 4
	for i, f := range core.Features {
		assert.Equal(t, uint64(i+1), st.Feature(f).Hits, f.String())
	}
}

package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/stores"
)

// remoteStore is a memory store the core does not know as in-process, so
// its calls go through the timeout, the breaker and the hook.
type remoteStore struct {
	stores.Store
	fail atomic.Bool
}

var errDown = errors.New("store down")

func (s *remoteStore) Get(ctx context.Context, key string) ([]byte, error) {
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, key)
}

type recordingObserver struct {
	mu      sync.Mutex
	lookups []LookupEvent
	calls   []StoreCallEvent
}

func (o *recordingObserver) Lookup(_ context.Context, ev LookupEvent) {
	o.mu.Lock()
	o.lookups = append(o.lookups, ev)
	o.mu.Unlock()
}

func (o *recordingObserver) StoreCall(_ context.Context, ev StoreCallEvent) {
	o.mu.Lock()
	o.calls = append(o.calls, ev)
	o.mu.Unlock()
}

func newRemoteCache(t *testing.T, cfg Config) (*Cache, *remoteStore) {
	t.Helper()
	mem, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	s := &remoteStore{Store: mem}
	c := new(Cache)
	c.Configure(cfg)
	c.Init(s)
	return c, s
}

// Every store call reaches the observer once, with its outcome and the
// breaker's state after it; a miss is an answer.
func TestObserverSeesStoreCalls(t *testing.T) {
	obs := &recordingObserver{}
	c, s := newRemoteCache(t, Config{Observer: obs, BreakerThreshold: 2, BreakerCooldown: time.Hour, Logger: &logRecorder{}})
	ctx := context.Background()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "absent"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Get(absent) = %v; want ErrNotFound", err)
	}
	s.fail.Store(true)
	for range 3 { // the third is skipped by the open breaker: no store call
		_, _ = c.Get(ctx, "k")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.calls) != 4 {
		t.Fatalf("observer saw %d store calls; want 4 (set, miss, two failures): %+v", len(obs.calls), obs.calls)
	}
	for i, want := range []struct {
		err  error
		open bool
	}{{nil, false}, {nil, false}, {errDown, false}, {errDown, true}} {
		got := obs.calls[i]
		if !errors.Is(got.Err, want.err) || (want.err == nil) != (got.Err == nil) || got.BreakerOpen != want.open {
			t.Errorf("call %d = %+v; want Err %v, BreakerOpen %v", i, got, want.err, want.open)
		}
		if got.Duration <= 0 {
			t.Errorf("call %d: Duration %v; want the call's time", i, got.Duration)
		}
	}
}

// A lookup is counted once, under its feature and result, and reported to
// every observer; a bypass is counted under its reason too.
func TestCountLookup(t *testing.T) {
	a, b := &recordingObserver{}, &recordingObserver{}
	c := new(Cache)
	c.Configure(Config{Observer: a})
	c.AddObserver(b)
	ctx := context.Background()
	c.CountLookup(ctx, FeaturePage, ResultHit, "")
	c.CountLookup(ctx, FeaturePage, ResultBypass, DetailAuthorization)
	c.CountFailedLookup(ctx, FeatureValue, ErrStoreUnavailable)
	c.CountFailedLookup(ctx, FeatureMemoize, errDown)
	c.CountFailedLookup(ctx, FeatureFragment, ErrNoStore)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	c.CountFailedLookup(cancelled, FeatureValue, context.Canceled)

	n := c.Counters()
	for _, tt := range []struct {
		f    Feature
		r    Result
		want uint64
	}{
		{FeaturePage, ResultHit, 1}, {FeaturePage, ResultBypass, 1}, {FeaturePage, ResultMiss, 0},
		{FeatureValue, ResultError, 2}, {FeatureMemoize, ResultError, 1}, {FeatureFragment, ResultBypass, 1},
	} {
		if got := n.Lookups(tt.f, tt.r); got != tt.want {
			t.Errorf("Lookups(%v, %v) = %d; want %d", tt.f, tt.r, got, tt.want)
		}
	}
	if got := c.Bypasses(); got[DetailAuthorization] != 1 || got[DetailNoStore] != 1 {
		t.Errorf("Bypasses() = %v; want authorization and no-store counted", got)
	}
	want := []LookupEvent{
		{FeaturePage, ResultHit, ""},
		{FeaturePage, ResultBypass, DetailAuthorization},
		{FeatureValue, ResultError, DetailStoreUnavailable},
		{FeatureMemoize, ResultError, DetailStoreError},
		{FeatureFragment, ResultBypass, DetailNoStore},
		{FeatureValue, ResultError, DetailContext},
	}
	for _, o := range []*recordingObserver{a, b} {
		if len(o.lookups) != len(want) {
			t.Fatalf("observer saw %+v; want %+v", o.lookups, want)
		}
		for i := range want {
			if o.lookups[i] != want[i] {
				t.Errorf("lookup %d = %+v; want %+v", i, o.lookups[i], want[i])
			}
		}
	}
}

func TestFeatureAndResultNames(t *testing.T) {
	var names []string
	for _, f := range Features {
		names = append(names, f.String())
	}
	for _, r := range Results {
		names = append(names, r.String())
	}
	if got, want := fmt.Sprint(names), "[page value memoize fragment hit miss stale bypass error]"; got != want {
		t.Errorf("names = %s; want %s", got, want)
	}
}

// With no observer, a store call is not timed at all.
func BenchmarkGetUnobserved(b *testing.B) { benchmarkGet(b, nil) }

// BenchmarkGetObserved is BenchmarkGetUnobserved with a no-op observer:
// the hook's cost (two clock reads and a call) on a store call.
func BenchmarkGetObserved(b *testing.B) { benchmarkGet(b, NopObserver{}) }

func benchmarkGet(b *testing.B, o Observer) {
	mem, _ := stores.NewMemory(stores.MemoryConfig{})
	defer mem.Close()
	c := new(Cache)
	c.Configure(Config{Observer: o})
	c.Init(&remoteStore{Store: mem})
	ctx := context.Background()
	_ = c.Set(ctx, "k", []byte("v"), time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.Get(ctx, "k")
	}
}

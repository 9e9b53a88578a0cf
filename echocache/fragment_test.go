package echocache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// fragStore is a networked-looking store over a memory store that records
// TTLs and can refuse writes as too large.
type fragStore struct {
	stores.Store
	gets     atomic.Int64
	tooLarge atomic.Bool
	mu       sync.Mutex
	ttl      time.Duration
}

func (s *fragStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *fragStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.ttl = ttl
	s.mu.Unlock()
	if s.tooLarge.Load() {
		return fmt.Errorf("fragStore: %d bytes: %w", len(v), stores.ErrTooLarge)
	}
	return s.Store.Set(ctx, key, v, ttl)
}

func newFragCache(t *testing.T, cfg echocache.Config) (*echocache.Cache, *fragStore) {
	t.Helper()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := &fragStore{Store: m}
	c, err := echocache.NewWithConfig(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestFragmentGetSetDelete(t *testing.T) {
	ctx := context.Background()
	c, s := newFragCache(t, echocache.Config{DefaultTTL: time.Hour})
	if b, err := (*core.Cache)(c).GetFragment(ctx, "f:x"); !errors.Is(err, stores.ErrNotFound) || b != nil {
		t.Errorf("GetFragment on an empty store = %q, %v; want ErrNotFound", b, err)
	}
	if err := (*core.Cache)(c).SetFragment(ctx, "f:x", []byte("<p>x</p>"), 0); err != nil {
		t.Fatal(err)
	}
	if s.ttl != time.Hour {
		t.Errorf("SetFragment ttl 0 sent %v; want the cache default 1h", s.ttl)
	}
	if err := (*core.Cache)(c).SetFragment(ctx, "f:y", []byte(""), -1); err != nil || s.ttl != -1 {
		t.Errorf("SetFragment ttl -1: %v, store got %v; want no expiry (-1)", err, s.ttl)
	}
	if b, err := (*core.Cache)(c).GetFragment(ctx, "f:x"); err != nil || string(b) != "<p>x</p>" {
		t.Errorf("GetFragment = %q, %v", b, err)
	}
	if b, err := (*core.Cache)(c).GetFragment(ctx, "f:y"); err != nil || b == nil || len(b) != 0 {
		t.Errorf("empty fragment = %q, %v; want an empty hit", b, err)
	}
	if st := c.Stats(); st.Hits != 2 || st.Misses != 1 || st.Stores != 2 {
		t.Errorf("stats = %+v; want 2 hits, 1 miss, 2 stores", st)
	}
	if err := c.DeleteFragment(ctx, "f:x", "f:y"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteFragment(ctx); err != nil {
		t.Errorf("DeleteFragment of nothing: %v", err)
	}
	if _, err := (*core.Cache)(c).GetFragment(ctx, "f:x"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("GetFragment after DeleteFragment = %v; want ErrNotFound", err)
	}
}

func TestFragmentWithoutStore(t *testing.T) {
	ctx := context.Background()
	c := echocache.New(nil)
	if _, err := (*core.Cache)(c).GetFragment(ctx, "f:x"); !errors.Is(err, echocache.ErrNoStore) {
		t.Errorf("GetFragment without a store = %v; want ErrNoStore", err)
	}
	if err := (*core.Cache)(c).SetFragment(ctx, "f:x", nil, 0); !errors.Is(err, echocache.ErrNoStore) {
		t.Errorf("SetFragment without a store = %v; want ErrNoStore", err)
	}
	if err := c.DeleteFragment(ctx, "f:x"); !errors.Is(err, echocache.ErrNoStore) {
		t.Errorf("DeleteFragment without a store = %v; want ErrNoStore", err)
	}
}

// A fragment too large for the store is a bypass, not a store failure: it
// must not open the circuit breaker for everything else.
func TestFragmentTooLargeKeepsBreakerClosed(t *testing.T) {
	ctx := context.Background()
	c, s := newFragCache(t, echocache.Config{BreakerThreshold: 1})
	(*core.Cache)(c).SetProbeInterval(time.Hour)
	s.tooLarge.Store(true)
	for range 3 {
		if err := (*core.Cache)(c).SetFragment(ctx, "f:big", make([]byte, 10), 0); !errors.Is(err, stores.ErrTooLarge) {
			t.Fatalf("SetFragment = %v; want ErrTooLarge", err)
		}
	}
	before := s.gets.Load()
	(*core.Cache)(c).GetFragment(ctx, "f:other")
	if s.gets.Load() == before {
		t.Errorf("the breaker opened after too-large fragments: the store was skipped")
	}
	st := c.Stats()
	if st.Bypasses["too-large"] != 3 || st.StoreErrors != 0 {
		t.Errorf("stats = %+v; want 3 too-large bypasses and no store errors", st)
	}
}

func TestFillFragmentRendersOnceForConcurrentCallers(t *testing.T) {
	const callers = 6
	ctx := context.Background()
	c, _ := newFragCache(t, echocache.Config{})
	var renders atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	render := func() ([]byte, error) {
		if renders.Add(1) == 1 {
			close(started)
		}
		<-release
		return []byte("body"), nil
	}
	var wg sync.WaitGroup
	var shared atomic.Int64
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, sh, err := (*core.Cache)(c).FillFragment(ctx, "f:cold", 0, render)
			if err != nil || string(b) != "body" {
				t.Errorf("FillFragment = %q, %v", b, err)
			}
			if sh {
				shared.Add(1)
			}
		}()
	}
	<-started
	close(release)
	wg.Wait()
	// Callers that came after the render finished found the stored
	// fragment; none rendered a second time.
	if got := renders.Load(); got != 1 {
		t.Errorf("render ran %d times; want 1", got)
	}
	if b, err := (*core.Cache)(c).GetFragment(ctx, "f:cold"); err != nil || string(b) != "body" {
		t.Errorf("stored fragment = %q, %v", b, err)
	}
}

func TestFillFragmentFindsStoredFragment(t *testing.T) {
	ctx := context.Background()
	c, _ := newFragCache(t, echocache.Config{})
	if err := (*core.Cache)(c).SetFragment(ctx, "f:warm", []byte("stored"), 0); err != nil {
		t.Fatal(err)
	}
	b, _, err := (*core.Cache)(c).FillFragment(ctx, "f:warm", 0, func() ([]byte, error) {
		t.Error("render called although the fragment is stored")
		return nil, nil
	})
	if err != nil || string(b) != "stored" {
		t.Errorf("FillFragment = %q, %v; want stored", b, err)
	}
}

func TestFillFragmentRenderError(t *testing.T) {
	ctx := context.Background()
	c, _ := newFragCache(t, echocache.Config{})
	boom := errors.New("boom")
	if _, _, err := (*core.Cache)(c).FillFragment(ctx, "f:bad", 0, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("FillFragment error = %v; want boom", err)
	}
	if _, err := (*core.Cache)(c).GetFragment(ctx, "f:bad"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("a failed render was stored (GetFragment error %v)", err)
	}
}

type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Warnf(format string, args ...any) {
	l.mu.Lock()
	fmt.Fprintf(&l.b, format+"\n", args...)
	l.mu.Unlock()
}

func TestWarnfUsesCacheLogger(t *testing.T) {
	var l lines
	c, _ := newFragCache(t, echocache.Config{Logger: &l})
	(*core.Cache)(c).Logf("pongotag: %s", "bad TTL")
	if got := l.b.String(); got != "echocache: pongotag: bad TTL\n" {
		t.Errorf("log = %q", got)
	}
}

// A render whose caller goes away meanwhile is stored all the same, for
// the callers that shared it and those to come.
func TestFillFragmentStoresAfterCallerLeft(t *testing.T) {
	c, _ := newFragCache(t, echocache.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	b, _, err := (*core.Cache)(c).FillFragment(ctx, "f:left", 0, func() ([]byte, error) {
		cancel()
		return []byte("done"), nil
	})
	if err != nil || string(b) != "done" {
		t.Fatalf("FillFragment = %q, %v", b, err)
	}
	if got, err := (*core.Cache)(c).GetFragment(context.Background(), "f:left"); err != nil || string(got) != "done" {
		t.Errorf("stored fragment = %q, %v; want done", got, err)
	}
}

// A fragment stored before fragments were framed as records (raw bytes),
// or one whose bytes changed, is a miss: never served, rendered again.
func TestFragmentPreviousFormatIsMiss(t *testing.T) {
	ctx := context.Background()
	c, s := newFragCache(t, echocache.Config{DefaultTTL: time.Hour})
	if err := s.Store.Set(ctx, "f:old", []byte("<b>old</b>"), time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err := (*core.Cache)(c).GetFragment(ctx, "f:old")
	if !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("GetFragment = %v; want stores.ErrNotFound (%s)", err, "nok, raw bytes of the previous format")
	}

	if err := (*core.Cache)(c).SetFragment(ctx, "f:new", []byte("<b>new</b>"), 0); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Store.Get(ctx, "f:new")
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	if err := s.Store.Set(ctx, "f:new", raw, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err = (*core.Cache)(c).GetFragment(ctx, "f:new")
	if !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("GetFragment = %v; want stores.ErrNotFound (%s)", err, "nok, a flipped bit from a networked store")
	}
}

// A render that fails is its own caller's failure: a caller waiting for it
// renders the fragment itself and never receives another caller's error.
// (Before fragments and pages shared one flight, the waiter got the error.)
func TestFillFragmentFailureIsNotShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := echocache.New(stores.NewNull())
		ctx := context.Background()
		boom := errors.New("boom")
		release := make(chan struct{})
		var renders atomic.Int64
		leaderErr := make(chan error, 1)
		go func() {
			_, _, err := (*core.Cache)(c).FillFragment(ctx, "f:k", 0, func() ([]byte, error) {
				renders.Add(1)
				<-release
				return nil, boom
			})
			leaderErr <- err
		}()
		synctest.Wait() // the leader is rendering
		type result struct {
			b   []byte
			err error
		}
		waiter := make(chan result, 1)
		go func() {
			b, _, err := (*core.Cache)(c).FillFragment(ctx, "f:k", 0, func() ([]byte, error) {
				renders.Add(1)
				return []byte("mine"), nil
			})
			waiter <- result{b, err}
		}()
		synctest.Wait() // the waiter is queued behind the leader
		close(release)
		if err := <-leaderErr; !errors.Is(err, boom) {
			t.Errorf("leader's FillFragment error = %v; want boom", err)
		}
		if got := <-waiter; got.err != nil || string(got.b) != "mine" {
			t.Errorf("waiter's FillFragment = %q, %v; want its own render %q", got.b, got.err, "mine")
		}
		if n := renders.Load(); n != 2 {
			t.Errorf("renders = %d; want 2 (the leader's, then the waiter's)", n)
		}
	})
}

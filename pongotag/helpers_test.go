package pongotag_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/pongotag"
	"github.com/echocache/echocache/stores"
)

// newMemory returns an empty in-process store.
func newMemory(t testing.TB) *stores.Memory {
	t.Helper()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// spyStore wraps a store, counting calls, recording TTLs and contexts, and
// failing on demand.
type spyStore struct {
	stores.Store

	gets, sets, deletes atomic.Int64
	failGet, failSet    atomic.Bool

	// remote makes the spy a networked store: its calls get the cache's
	// timeout, breaker, error logging and counting.
	remote bool

	mu      sync.Mutex
	ttls    map[string]time.Duration // last TTL per key
	getKeys []string
	ctxs    []context.Context

	// afterGet, when set, is called after every Get with its result.
	afterGet func(key string, err error)
}

var errBroken = errors.New("spy: store is down")

func newSpy(s stores.Store) *spyStore {
	return &spyStore{Store: s, ttls: map[string]time.Duration{}}
}

// Local makes the spy a local store when the wrapped one is, so it is
// called without timeouts, as the wrapped store would be.
// A spy over an in-process store is one too, unless it is remote
// (internal/inproc); it never hands out its bytes.
func init() {
	inproc.Register(func(s any) (inproc.Store, bool) {
		spy, ok := s.(*spyStore)
		if !ok || spy.remote {
			return inproc.Store{}, false
		}
		_, local := inproc.Lookup(spy.Store)
		return inproc.Store{}, local
	})
}

func (s *spyStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	s.mu.Lock()
	s.getKeys = append(s.getKeys, key)
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	var b []byte
	err := errBroken
	if !s.failGet.Load() {
		b, err = s.Store.Get(ctx, key)
	}
	if s.afterGet != nil {
		s.afterGet(key, err)
	}
	return b, err
}

func (s *spyStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.sets.Add(1)
	s.mu.Lock()
	s.ttls[key] = ttl
	s.mu.Unlock()
	if s.failSet.Load() {
		return errBroken
	}
	return s.Store.Set(ctx, key, value, ttl)
}

func (s *spyStore) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, key)
}

// onlyTTL returns the TTL of the only key set so far.
func (s *spyStore) onlyTTL(t *testing.T) time.Duration {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ttls) != 1 {
		t.Fatalf("store got %d keys (%v); want 1", len(s.ttls), s.ttls)
	}
	for _, ttl := range s.ttls {
		return ttl
	}
	return 0
}

func (s *spyStore) keysGot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.getKeys...)
}

// logRecorder is an echocache.Logger that keeps every line.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Warnf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logRecorder) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// newCache returns a cache over a spy over a fresh memory store, logging
// to the returned recorder without rate limit.
func newCache(t testing.TB) (*echocache.Cache, *spyStore, *logRecorder) {
	t.Helper()
	return newCacheOver(t, newSpy(newMemory(t)))
}

func newCacheOver(t testing.TB, spy *spyStore) (*echocache.Cache, *spyStore, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	c, err := echocache.NewWithConfig(spy, echocache.Config{Logger: logs, LogInterval: time.Nanosecond, BreakerThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c, spy, logs
}

// counter is a template function returning 1, 2, 3... so that a test can
// tell a rendered body from a cached one.
type counter struct{ n atomic.Int64 }

func (c *counter) next() int64 { return c.n.Add(1) }

// mustParse parses a template string in the <% %> or {% %} spelling.
func mustParse(t testing.TB, src string) *pongo2.Template {
	t.Helper()
	tpl, err := pongotag.FromString(nil, src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return tpl
}

func render(t testing.TB, tpl *pongo2.Template, ctx pongo2.Context) string {
	t.Helper()
	out, err := tpl.Execute(ctx)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

// timeAfter bounds a wait for something that must not block at all; it is
// a guard against hanging the suite, not a timing assumption.
func timeAfter(t *testing.T) <-chan time.Time {
	t.Helper()
	return time.After(10 * time.Second)
}

package storetest_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// mapStore is the smallest store that passes the suite: a map under a mutex.
// The suite's own test runs against it, so a change to the suite that no
// correct store can pass shows here first.
type mapStore struct {
	mu     sync.Mutex
	m      map[string]entry
	def    time.Duration
	closed bool
}

type entry struct {
	val []byte
	exp time.Time // zero: never
}

func newMapStore(def time.Duration) *mapStore { return &mapStore{m: map[string]entry{}, def: def} }

func (s *mapStore) check(ctx context.Context) error {
	if s.closed {
		return stores.ErrClosed
	}
	return ctx.Err()
}

func (s *mapStore) get(key string) ([]byte, bool) {
	e, ok := s.m[key]
	if !ok || !e.exp.IsZero() && !time.Now().Before(e.exp) {
		return nil, false
	}
	return e.val, true
}

func (s *mapStore) set(key string, value []byte, ttl time.Duration) {
	e := entry{val: append([]byte{}, value...)}
	if ttl == stores.DefaultTTL {
		ttl = s.def
	}
	if d := ttl; d > 0 {
		e.exp = time.Now().Add(d)
	}
	s.m[key] = e
}

func (s *mapStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, ok := s.get(key)
	if !ok {
		return nil, stores.ErrNotFound
	}
	return append([]byte{}, v...), nil
}

func (s *mapStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	s.set(key, value, ttl)
	return nil
}

func (s *mapStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if _, ok := s.get(key); ok {
		return false, nil
	}
	s.set(key, value, ttl)
	return true, nil
}

func (s *mapStore) Delete(ctx context.Context, key string) error {
	return s.DeleteMany(ctx, []string{key})
}

func (s *mapStore) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if v, ok := s.get(k); ok {
			out[k] = append([]byte{}, v...)
		}
	}
	return out, nil
}

func (s *mapStore) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	for k, v := range items {
		s.set(k, v, ttl)
	}
	return nil
}

func (s *mapStore) DeleteMany(ctx context.Context, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	for _, k := range keys {
		delete(s.m, k)
	}
	return nil
}

func (s *mapStore) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	v, ok := s.get(key)
	if !ok {
		s.set(key, []byte(strconv.FormatInt(delta, 10)), stores.NoExpiry)
		return delta, nil
	}
	// Redis's counter form: strconv.FormatInt's output and nothing else.
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(v) || delta > 0 && n > math.MaxInt64-delta || delta < 0 && n < math.MinInt64-delta {
		return 0, stores.ErrNotInteger
	}
	n += delta
	e := s.m[key]
	e.val = []byte(strconv.FormatInt(n, 10))
	s.m[key] = e
	return n, nil
}

func (s *mapStore) Clear(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	clear(s.m)
	return nil
}

func (s *mapStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func TestSuiteAgainstMapStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Store { return newMapStore(0) }, storetest.Options{
		NoSizeLimit:        "the map store has no size limit",
		ShortTTL:           100 * time.Millisecond,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store { return newMapStore(def) },
	})
}

// tooLarge wraps a store and refuses values above a limit, removing the
// values the refused writes were meant to replace.
type tooLarge struct {
	*mapStore
	max int
}

func (s tooLarge) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if len(value) > s.max {
		_ = s.Delete(ctx, key)
		return fmt.Errorf("value of %d bytes: %w", len(value), stores.ErrTooLarge)
	}
	return s.mapStore.Set(ctx, key, value, ttl)
}

func (s tooLarge) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	for _, v := range items {
		if len(v) > s.max {
			for k := range items {
				_ = s.Delete(ctx, k)
			}
			return fmt.Errorf("value of %d bytes: %w", len(v), stores.ErrTooLarge)
		}
	}
	return s.mapStore.SetMany(ctx, items, ttl)
}

func (s tooLarge) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if len(value) > s.max {
		return false, fmt.Errorf("value of %d bytes: %w", len(value), stores.ErrTooLarge)
	}
	return s.mapStore.Add(ctx, key, value, ttl)
}

func TestSuiteWithMaxValueSize(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Store { return tooLarge{newMapStore(0), 1 << 20} }, storetest.Options{
		MaxValueSize: 1 << 20,
		ShortTTL:     100 * time.Millisecond,
	})
}

func TestSuiteWithPlant(t *testing.T) {
	// Another namespace of the same "backend": a store the suite never sees.
	neighbour := newMapStore(0)
	storetest.Run(t, func(t *testing.T) stores.Store { return newMapStore(0) }, storetest.Options{
		NoSizeLimit: "the map store has no size limit",
		ShortTTL:    100 * time.Millisecond,
		Plant: func(t *testing.T, key string) {
			if err := neighbour.Set(t.Context(), key, []byte("planted"), stores.NoExpiry); err != nil {
				t.Fatal(err)
			}
		},
		PlantedExists: func(t *testing.T, key string) bool {
			_, err := neighbour.Get(t.Context(), key)
			return err == nil
		},
	})
}

func TestNamespaceIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		ns := storetest.Namespace(t)
		if seen[ns] {
			t.Fatalf("Namespace returned %q twice", ns)
		}
		seen[ns] = true
	}
}

// TestSuiteRequiresSizeLimitUnderCI runs a suite without MaxValueSize or
// NoSizeLimit in a child process with CI=true: its RefusedWrite check must
// fail rather than be skipped.
func TestSuiteRequiresSizeLimitUnderCI(t *testing.T) {
	if os.Getenv("STORETEST_CHILD") == "1" {
		storetest.Run(t, func(t *testing.T) stores.Store { return newMapStore(0) }, storetest.Options{
			ShortTTL: 100 * time.Millisecond,
		})
		return
	}
	run := func(ci string) (string, error) {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSuiteRequiresSizeLimitUnderCI$/^RefusedWrite$", "-test.v")
		cmd.Env = append(os.Environ(), "STORETEST_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	if err == nil || !strings.Contains(out, "--- FAIL: TestSuiteRequiresSizeLimitUnderCI/RefusedWrite") || !strings.Contains(out, "Options.MaxValueSize is 0") {
		t.Fatalf("under CI=true a suite without a size limit did not fail its RefusedWrite check (err %v):\n%s", err, out)
	}
	if out, err := run(""); err != nil {
		t.Fatalf("outside CI the missing limit must only be logged (err %v):\n%s", err, out)
	}
}

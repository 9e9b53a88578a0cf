package echocache_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

type user struct {
	ID    int64
	Name  string
	Tags  []string
	Seen  time.Time
	Admin bool
}

// 100 concurrent callers of a cold key run the loader once, for a Function,
// a Memoized function and GetOrSet.
func TestTypedStampedeOneLoaderCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()
		const n = 100

		// gated returns a loader that blocks until every caller has started,
		// so that without stampede protection many callers would reach it.
		gated := func(cnt *counter, started *atomic.Int64, val string) func(context.Context) (string, error) {
			return func(ctx context.Context) (string, error) {
				cnt.n.Add(1)
				for started.Load() < n {
					select {
					case <-ctx.Done():
						return "", ctx.Err()
					case <-time.After(time.Millisecond):
					}
				}
				return val, nil
			}
		}

		t.Run("Function", func(t *testing.T) {
			var cnt counter
			var started atomic.Int64
			f := echocache.Function(c, "stampede-func", time.Minute, gated(&cnt, &started, "fn-value"))
			res, errs := hammer(n, func() (string, error) { started.Add(1); return f.Get(ctx) })
			for i := range n {
				require.NoError(t, errs[i])
				require.Equal(t, "fn-value", res[i])
			}
			assert.Equal(t, int64(1), cnt.calls(), "loader calls for %d concurrent callers", n)
		})
		t.Run("Memoize", func(t *testing.T) {
			var cnt counter
			var started atomic.Int64
			load := gated(&cnt, &started, "memo-value")
			m := echocache.Memoize(c, "stampede-memo", time.Minute, func(ctx context.Context, id int) (string, error) {
				s, err := load(ctx)
				return fmt.Sprint(s, id), err
			})
			res, errs := hammer(n, func() (string, error) { started.Add(1); return m.Get(ctx, 7) })
			for i := range n {
				require.NoError(t, errs[i])
				require.Equal(t, "memo-value7", res[i])
			}
			assert.Equal(t, int64(1), cnt.calls(), "loader calls for %d concurrent callers", n)
		})
		t.Run("GetOrSet", func(t *testing.T) {
			var cnt counter
			var started atomic.Int64
			load := gated(&cnt, &started, "gos-value")
			res, errs := hammer(n, func() (string, error) {
				started.Add(1)
				return echocache.GetOrSet(ctx, c, "stampede-gos", time.Minute, load)
			})
			for i := range n {
				require.NoError(t, errs[i])
				require.Equal(t, "gos-value", res[i])
			}
			assert.Equal(t, int64(1), cnt.calls(), "loader calls for %d concurrent callers", n)
		})
	})
}

// The shared call survives an impatient caller and is cancelled only when
// every caller has gone.
func TestTypedSharedCallContext(t *testing.T) {
	c := newTestCache(t, openStore(t, "memory://"), echocache.Config{})
	entered := make(chan struct{})
	release := make(chan struct{})
	loaderCtxErr := make(chan error, 1)
	f := echocache.Function(c, "ctx", time.Minute, func(ctx context.Context) (string, error) {
		close(entered)
		select {
		case <-release:
			return "done", ctx.Err()
		case <-ctx.Done():
			loaderCtxErr <- ctx.Err()
			return "", ctx.Err()
		}
	})

	// The patient caller starts the shared call; an impatient one joins it
	// and leaves before the loader is done.
	patientRes := make(chan string, 1)
	patientErr := make(chan error, 1)
	go func() {
		v, err := f.Get(context.Background())
		patientRes <- v
		patientErr <- err
	}()
	<-entered
	impatient, cancel := context.WithCancel(context.Background())
	impatientErr := make(chan error, 1)
	go func() { _, err := f.Get(impatient); impatientErr <- err }()
	cancel()
	require.ErrorIs(t, <-impatientErr, context.Canceled)
	close(release)
	require.NoError(t, <-patientErr, "patient caller after the impatient one left")
	assert.Equal(t, "done", <-patientRes)

	// When the only caller leaves, the loader's context is cancelled.
	entered2 := make(chan struct{})
	g := echocache.Function(c, "ctx-all-gone", time.Minute, func(ctx context.Context) (string, error) {
		close(entered2)
		<-ctx.Done()
		loaderCtxErr <- ctx.Err()
		return "", ctx.Err()
	})
	only, cancelOnly := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := g.Get(only); errc <- err }()
	<-entered2
	cancelOnly()
	require.ErrorIs(t, <-errc, context.Canceled)
	select {
	case err := <-loaderCtxErr:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the loader's context was not cancelled after every caller left")
	}
}

// Forget drops one entry; ForgetAll drops every entry of one memoized
// function and no other's.
func TestTypedForget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()

		var fcnt counter
		f := echocache.Function(c, "forget-func", time.Hour, func(context.Context) (int64, error) {
			return fcnt.n.Add(1), nil
		})
		mustGet := func(v int64, err error) int64 { t.Helper(); require.NoError(t, err); return v }
		assert.Equal(t, int64(1), mustGet(f.Get(ctx)))
		assert.Equal(t, int64(1), mustGet(f.Get(ctx)), "second Get is a hit")
		require.NoError(t, f.Forget(ctx))
		assert.Equal(t, int64(2), mustGet(f.Get(ctx)), "Get after Forget calls the function")

		calls := map[string]int{}
		var mu sync.Mutex
		mk := func(name string) *echocache.Memoized[string, string] {
			return echocache.Memoize(c, name, time.Hour, func(_ context.Context, arg string) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				calls[name+"/"+arg]++
				return fmt.Sprintf("%s(%s)#%d", name, arg, calls[name+"/"+arg]), nil
			})
		}
		m, other := mk("forget-memo"), mk("forget-other")
		get := func(m *echocache.Memoized[string, string], a string) string {
			t.Helper()
			v, err := m.Get(ctx, a)
			require.NoError(t, err)
			return v
		}
		assert.Equal(t, "forget-memo(a)#1", get(m, "a"))
		assert.Equal(t, "forget-memo(b)#1", get(m, "b"))
		assert.Equal(t, "forget-other(a)#1", get(other, "a"))
		assert.Equal(t, "forget-memo(a)#1", get(m, "a"), "hit")

		require.NoError(t, m.Forget(ctx, "a"))
		assert.Equal(t, "forget-memo(a)#2", get(m, "a"), "a after Forget(a)")
		assert.Equal(t, "forget-memo(b)#1", get(m, "b"), "b untouched by Forget(a)")

		require.NoError(t, m.ForgetAll(ctx))
		assert.Equal(t, "forget-memo(a)#3", get(m, "a"), "a after ForgetAll")
		assert.Equal(t, "forget-memo(b)#2", get(m, "b"), "b after ForgetAll")
		assert.Equal(t, "forget-other(a)#1", get(other, "a"), "another function untouched by ForgetAll")

		// Forget of an argument never cached, on a function never called,
		// is not an error.
		fresh := mk("forget-fresh")
		require.NoError(t, fresh.Forget(ctx, "zzz"))
	})
}

// The memoize version token outlives the cache's default TTL and the
// entries' own TTL (Flask-Caching #531), and an evicted token cannot bring
// old entries back.
func TestTypedVersionTokenOutlivesTTLs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		short := b.minTTL
		c := newTestCache(t, s, echocache.Config{DefaultTTL: short})
		ctx := context.Background()

		var long, brief counter
		mLong := echocache.Memoize(c, "ttl-long", time.Hour, func(_ context.Context, a string) (int64, error) {
			return long.n.Add(1), nil
		})
		mShort := echocache.Memoize(c, "ttl-short", short, func(_ context.Context, a string) (int64, error) {
			return brief.n.Add(1), nil
		})
		_, err := mLong.Get(ctx, "x")
		require.NoError(t, err)
		_, err = mShort.Get(ctx, "x")
		require.NoError(t, err)
		tokLong, err := s.Get(ctx, "mv:ttl-long")
		require.NoError(t, err, "version token of ttl-long")
		tokShort, err := s.Get(ctx, "mv:ttl-short")
		require.NoError(t, err, "version token of ttl-short")

		// A probe written with the default TTL shows when that TTL is over.
		require.NoError(t, echocache.Set(ctx, c, "probe", "x", 0))
		require.Eventually(t, func() bool {
			ok, err := c.Has(ctx, "probe")
			return err == nil && !ok
		}, 20*short+5*time.Second, 20*time.Millisecond, "probe with the default TTL never expired")
		_, err = mShort.Get(ctx, "x") // its entry has expired too (same TTL, written earlier)
		require.NoError(t, err)

		v, err := mLong.Get(ctx, "x")
		require.NoError(t, err)
		assert.Equal(t, int64(1), v, "entry with a long TTL is still served after the default TTL")
		assert.Equal(t, int64(1), long.calls())
		assert.Equal(t, int64(2), brief.calls(), "entry with the short TTL expired and was reloaded")
		for name, want := range map[string][]byte{"mv:ttl-long": tokLong, "mv:ttl-short": tokShort} {
			got, err := s.Get(ctx, name)
			require.NoError(t, err, "version token %s after the TTLs", name)
			assert.Equal(t, string(want), string(got), "version token %s changed", name)
		}

		// Evicting the token (simulated by deleting it) must not resurrect
		// or keep serving old entries: the new token is random.
		require.NoError(t, s.Delete(ctx, "mv:ttl-long"))
		v, err = mLong.Get(ctx, "x")
		require.NoError(t, err)
		assert.Equal(t, int64(2), v, "Get after the token vanished")
		got, err := s.Get(ctx, "mv:ttl-long")
		require.NoError(t, err)
		assert.NotEqual(t, string(tokLong), string(got), "recreated token equals the old one")
	})
}

// A loader error is returned and not cached; the next call runs the loader
// again.
func TestTypedLoaderErrorNotCached(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()
		errLoad := errors.New("database down")

		fail := true
		var cnt counter
		loader := func(context.Context) (string, error) {
			cnt.n.Add(1)
			if fail {
				return "partial", errLoad
			}
			return "ok", nil
		}
		f := echocache.Function(c, "err-func", time.Hour, loader)
		m := echocache.Memoize(c, "err-memo", time.Hour, func(ctx context.Context, _ int) (string, error) { return loader(ctx) })
		gos := func(ctx context.Context) (string, error) {
			return echocache.GetOrSet(ctx, c, "err-gos", time.Hour, loader)
		}
		for name, get := range map[string]func(context.Context) (string, error){
			"Function": f.Get,
			"Memoize":  func(ctx context.Context) (string, error) { return m.Get(ctx, 1) },
			"GetOrSet": gos,
		} {
			fail = true
			cnt.n.Store(0)
			v, err := get(ctx)
			require.ErrorIs(t, err, errLoad, name)
			assert.Empty(t, v, "%s: value returned with a loader error", name)
			fail = false
			v, err = get(ctx)
			require.NoError(t, err, name)
			assert.Equal(t, "ok", v, name)
			assert.Equal(t, int64(2), cnt.calls(), "%s: loader calls (the error must not be cached)", name)
			v, err = get(ctx)
			require.NoError(t, err, name)
			assert.Equal(t, "ok", v, name)
			assert.Equal(t, int64(2), cnt.calls(), "%s: third call is a hit", name)
		}
		_, err := echocache.Get[string](ctx, c, "err-func")
		require.NoError(t, err)
	})
}

// Zero results are cached only with CacheZero, and a cached zero is a hit,
// distinct from a miss.
func TestTypedZeroCaching(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()

		type result struct {
			name string
			opts []echocache.CallOption
			want int64 // loader calls after three Gets
		}
		for _, tc := range []result{
			{"off", nil, 3},
			{"on", []echocache.CallOption{echocache.CacheZero()}, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var nilCnt, zeroCnt, memoCnt counter
				fNil := echocache.Function(c, "zero-nil-"+tc.name, time.Hour, func(context.Context) (*user, error) {
					nilCnt.n.Add(1)
					return nil, nil
				}, tc.opts...)
				fZero := echocache.Function(c, "zero-int-"+tc.name, time.Hour, func(context.Context) (int, error) {
					zeroCnt.n.Add(1)
					return 0, nil
				}, tc.opts...)
				m := echocache.Memoize(c, "zero-memo-"+tc.name, time.Hour, func(_ context.Context, a string) ([]string, error) {
					memoCnt.n.Add(1)
					return nil, nil
				}, tc.opts...)
				for range 3 {
					u, err := fNil.Get(ctx)
					require.NoError(t, err)
					assert.Nil(t, u)
					z, err := fZero.Get(ctx)
					require.NoError(t, err)
					assert.Zero(t, z)
					sl, err := m.Get(ctx, "a")
					require.NoError(t, err)
					assert.Nil(t, sl)
				}
				assert.Equal(t, tc.want, nilCnt.calls(), "nil result loader calls")
				assert.Equal(t, tc.want, zeroCnt.calls(), "zero int loader calls")
				assert.Equal(t, tc.want, memoCnt.calls(), "memoized nil loader calls")

				// Direct reads tell a cached zero from a miss.
				u, err := echocache.Get[*user](ctx, c, "zero-nil-"+tc.name)
				if tc.want == 1 {
					require.NoError(t, err, "cached nil must be a hit")
					assert.Nil(t, u)
				} else {
					require.ErrorIs(t, err, echocache.ErrNotFound, "nil must not be cached")
				}
			})
		}

		// Set stores zero values explicitly; they read back as hits.
		require.NoError(t, echocache.Set(ctx, c, "explicit-zero", "", time.Hour))
		v, err := echocache.Get[string](ctx, c, "explicit-zero")
		require.NoError(t, err, "explicitly stored empty string")
		assert.Equal(t, "", v)
		_, err = echocache.Get[string](ctx, c, "never-set")
		require.ErrorIs(t, err, echocache.ErrNotFound)
		require.ErrorIs(t, err, stores.ErrNotFound)
	})
}

// Two Caches on one store (two processes of one app) see each other's
// values, memoized results and ForgetAll.
func TestTypedSharedBetweenCaches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s1, s2 := b.open(t)
		c1 := newTestCache(t, s1, echocache.Config{})
		c2 := newTestCache(t, s2, echocache.Config{})
		ctx := context.Background()

		want := user{ID: 7, Name: "gopher", Tags: []string{"a", "b"}, Seen: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), Admin: true}
		require.NoError(t, echocache.Set(ctx, c1, "user:7", want, time.Hour))
		got, err := echocache.Get[user](ctx, c2, "user:7")
		require.NoError(t, err)
		assert.Equal(t, want, got)

		var n1, n2 counter
		f1 := echocache.Function(c1, "shared-func", time.Hour, func(context.Context) (string, error) { n1.n.Add(1); return "from c1", nil })
		f2 := echocache.Function(c2, "shared-func", time.Hour, func(context.Context) (string, error) { n2.n.Add(1); return "from c2", nil })
		v, err := f1.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, "from c1", v)
		v, err = f2.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, "from c1", v, "second process reads the first one's result")
		assert.Equal(t, int64(0), n2.calls())

		mk := func(c *echocache.Cache, cnt *counter, who string) *echocache.Memoized[int, string] {
			return echocache.Memoize(c, "shared-memo", time.Hour, func(_ context.Context, a int) (string, error) {
				cnt.n.Add(1)
				return fmt.Sprintf("%s:%d", who, a), nil
			})
		}
		var m1n, m2n counter
		m1, m2 := mk(c1, &m1n, "c1"), mk(c2, &m2n, "c2")
		v, err = m1.Get(ctx, 5)
		require.NoError(t, err)
		v2, err := m2.Get(ctx, 5)
		require.NoError(t, err)
		assert.Equal(t, v, v2)
		assert.Equal(t, int64(0), m2n.calls(), "memoized result shared")

		require.NoError(t, m2.ForgetAll(ctx))
		v, err = m1.Get(ctx, 5)
		require.NoError(t, err)
		assert.Equal(t, "c1:5", v)
		assert.Equal(t, int64(2), m1n.calls(), "ForgetAll in one process is seen by the other")
	})
}

// A corrupt stored value is a miss (and is deleted), never a panic.
func TestTypedCorruptValueIsMiss(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		logs := &logBuffer{}
		c := newTestCache(t, s, echocache.Config{Logger: logs})
		ctx := context.Background()

		cases := []struct {
			name string
			raw  []byte
		}{
			{"empty", []byte{}},
			{"unknown format", []byte{0xff, 1, 2}},
			{"bad payload", []byte("V\xff\xff\xff")},
			{"truncated payload", []byte("V\xa5\x62ID")},
			{"zero with trailer", []byte("Zjunk")},
			{"lone minus", []byte("-")},
			{"integer overflow", []byte("99999999999999999999999")},
			{"huge array claim", []byte("V\x9b\xff\xff\xff\xff\xff\xff\xff\xff")},
			{"deep nesting", append([]byte("V"), []byte(strings.Repeat("\x81", 5000))...)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, s.Set(ctx, "v:corrupt", tc.raw, time.Hour))
				_, err := echocache.Get[user](ctx, c, "corrupt")
				require.ErrorIs(t, err, echocache.ErrNotFound)
				_, err = s.Get(ctx, "v:corrupt")
				require.ErrorIs(t, err, stores.ErrNotFound, "corrupt entry not deleted")

				// GetOrSet and GetMany treat it as a miss too.
				require.NoError(t, s.Set(ctx, "v:corrupt", tc.raw, time.Hour))
				got, err := echocache.GetMany[user](ctx, c, []string{"corrupt"})
				require.NoError(t, err)
				assert.Empty(t, got)
				require.NoError(t, s.Set(ctx, "v:corrupt", tc.raw, time.Hour))
				u, err := echocache.GetOrSet(ctx, c, "corrupt", time.Hour, func(context.Context) (user, error) {
					return user{ID: 1}, nil
				})
				require.NoError(t, err)
				assert.Equal(t, int64(1), u.ID)
				require.NoError(t, s.Delete(ctx, "v:corrupt"))
			})
		}
		assert.Contains(t, logs.String(), "corrupt")

		// A corrupt memoized entry and a corrupt version token.
		var cnt counter
		m := echocache.Memoize(c, "corrupt-memo", time.Hour, func(_ context.Context, a string) (string, error) {
			cnt.n.Add(1)
			return "fresh " + a, nil
		})
		_, err := m.Get(ctx, "a")
		require.NoError(t, err)
		tok, err := s.Get(ctx, "mv:corrupt-memo")
		require.NoError(t, err)
		require.NoError(t, s.Set(ctx, "m:corrupt-memo:"+string(tok)+":s1:a", []byte("V\xff"), time.Hour))
		v, err := m.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, "fresh a", v)
		assert.Equal(t, int64(2), cnt.calls(), "corrupt memoized entry reloaded")

		require.NoError(t, s.Set(ctx, "mv:corrupt-memo", []byte("not:a:token"), stores.NoExpiry))
		v, err = m.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, "fresh a", v)
		assert.Equal(t, int64(3), cnt.calls(), "corrupt version token replaced")
		tok2, err := s.Get(ctx, "mv:corrupt-memo")
		require.NoError(t, err)
		assert.Len(t, tok2, 16)
		assert.NotContains(t, string(tok2), ":")
	})
}

// A store error makes the loader run and its result come back; the error is
// logged and counted, not returned, unless the call is Strict.
func TestTypedFailOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		fs := &failingStore{Store: s}
		logs := &logBuffer{}
		c := newTestCache(t, fs, echocache.Config{Logger: logs, BreakerThreshold: -1})
		ctx := context.Background()
		fs.fail.Store(true)

		var cnt counter
		loader := func(context.Context) (string, error) { cnt.n.Add(1); return "computed", nil }
		f := echocache.Function(c, "fo-func", time.Hour, loader)
		m := echocache.Memoize(c, "fo-memo", time.Hour, func(ctx context.Context, _ string) (string, error) { return loader(ctx) })

		for name, get := range map[string]func() (string, error){
			"Function": func() (string, error) { return f.Get(ctx) },
			"Memoize":  func() (string, error) { return m.Get(ctx, "a") },
			"GetOrSet": func() (string, error) { return echocache.GetOrSet(ctx, c, "fo-gos", time.Hour, loader) },
		} {
			before := c.Stats().StoreErrors
			cnt.n.Store(0)
			v, err := get()
			require.NoError(t, err, "%s with the store down", name)
			assert.Equal(t, "computed", v, name)
			assert.Equal(t, int64(1), cnt.calls(), name)
			assert.Greater(t, c.Stats().StoreErrors, before, "%s: store error not counted", name)
		}
		assert.Contains(t, logs.String(), errBoom.Error(), "store error not logged")

		_, err := echocache.Get[string](ctx, c, "fo-get")
		require.ErrorIs(t, err, echocache.ErrNotFound, "fail-open Get")
		require.NoError(t, echocache.Set(ctx, c, "fo-set", "x", time.Hour), "fail-open Set")
		require.NoError(t, echocache.SetMany(ctx, c, map[string]int{"a": 1}, time.Hour), "fail-open SetMany")
		got, err := echocache.GetMany[int](ctx, c, []string{"a"})
		require.NoError(t, err, "fail-open GetMany")
		assert.Empty(t, got)

		// Strict calls return the store's error.
		strict := echocache.Strict()
		_, err = echocache.Get[string](ctx, c, "fo-get", strict)
		require.ErrorIs(t, err, errBoom, "strict Get")
		require.ErrorIs(t, echocache.Set(ctx, c, "fo-set", "x", time.Hour, strict), errBoom, "strict Set")
		_, err = echocache.GetMany[int](ctx, c, []string{"a"}, strict)
		require.ErrorIs(t, err, errBoom, "strict GetMany")
		require.ErrorIs(t, echocache.SetMany(ctx, c, map[string]int{"a": 1}, time.Hour, strict), errBoom, "strict SetMany")
		cnt.n.Store(0)
		_, err = echocache.GetOrSet(ctx, c, "fo-gos", time.Hour, loader, strict)
		require.ErrorIs(t, err, errBoom, "strict GetOrSet")
		fs2 := echocache.Function(c, "fo-strict-func", time.Hour, loader, strict)
		_, err = fs2.Get(ctx)
		require.ErrorIs(t, err, errBoom, "strict Function")
		ms := echocache.Memoize(c, "fo-strict-memo", time.Hour, func(ctx context.Context, _ int) (string, error) { return loader(ctx) }, strict)
		_, err = ms.Get(ctx, 1)
		require.ErrorIs(t, err, errBoom, "strict Memoize")

		// Calls whose answer is the point return store errors always.
		_, err = c.Has(ctx, "x")
		require.ErrorIs(t, err, errBoom, "Has")
		_, err = c.Incr(ctx, "x", 1)
		require.ErrorIs(t, err, errBoom, "Incr")
		_, err = echocache.Add(ctx, c, "x", 1, time.Hour)
		require.ErrorIs(t, err, errBoom, "Add")
		require.ErrorIs(t, c.Delete(ctx, "x"), errBoom, "Delete")
		require.ErrorIs(t, c.DeleteMany(ctx, "x", "y"), errBoom, "DeleteMany")
		require.ErrorIs(t, f.Forget(ctx), errBoom, "Func.Forget")
		require.ErrorIs(t, m.Forget(ctx, "a"), errBoom, "Memoized.Forget")
		require.ErrorIs(t, m.ForgetAll(ctx), errBoom, "Memoized.ForgetAll")

		// The store comes back: values are cached again. The background
		// removal of the keys the outage left unsettled can land after the
		// first write of the same key and undo it (one more load, never a
		// stale value: it was seen on a cluster, whose pipelines dial
		// connections of their own), so the value is cached within a few
		// calls.
		fs.fail.Store(false)
		cached := false
		for range 3 {
			cnt.n.Store(0)
			for range 2 {
				v, err := f.Get(ctx)
				require.NoError(t, err)
				assert.Equal(t, "computed", v)
			}
			if cached = cnt.calls() < 2; cached { // the second call hit
				break
			}
		}
		assert.True(t, cached, "cached again once the store answers")
	})
}

// Direct access: every call of the typed API on every backend.
func TestTypedDirectAccess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()

		// Round trips of assorted types.
		u := user{ID: 1, Name: "ünïcode \x00 name", Tags: []string{}, Seen: time.Date(2001, 2, 3, 4, 5, 6, 7, time.FixedZone("X", 3600))}
		require.NoError(t, echocache.Set(ctx, c, "u", u, time.Hour))
		gotU, err := echocache.Get[user](ctx, c, "u")
		require.NoError(t, err)
		assert.Equal(t, u.Name, gotU.Name)
		assert.True(t, u.Seen.Equal(gotU.Seen), "time %v round-tripped as %v", u.Seen, gotU.Seen)
		assert.Equal(t, []string{}, gotU.Tags)
		require.NoError(t, echocache.Set(ctx, c, "m", map[string][]int{"a": {1, 2}}, time.Hour))
		gotM, err := echocache.Get[map[string][]int](ctx, c, "m")
		require.NoError(t, err)
		assert.Equal(t, map[string][]int{"a": {1, 2}}, gotM)
		require.NoError(t, echocache.Set(ctx, c, "p", &u, time.Hour))
		gotP, err := echocache.Get[*user](ctx, c, "p")
		require.NoError(t, err)
		assert.Equal(t, u.ID, gotP.ID)
		require.NoError(t, echocache.Set(ctx, c, "b", []byte{0, 1, 2, 255}, time.Hour))
		gotB, err := echocache.Get[[]byte](ctx, c, "b")
		require.NoError(t, err)
		assert.Equal(t, []byte{0, 1, 2, 255}, gotB)

		// A value of the wrong type is a miss (and is kept).
		_, err = echocache.Get[int](ctx, c, "u")
		require.ErrorIs(t, err, echocache.ErrNotFound)
		require.ErrorIs(t, err, echocache.ErrTypeMismatch)

		// Add only when absent.
		ok, err := echocache.Add(ctx, c, "add", "first", time.Hour)
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = echocache.Add(ctx, c, "add", "second", time.Hour)
		require.NoError(t, err)
		assert.False(t, ok)
		v, err := echocache.Get[string](ctx, c, "add")
		require.NoError(t, err)
		assert.Equal(t, "first", v)

		// Has, Delete, DeleteMany.
		has, err := c.Has(ctx, "add")
		require.NoError(t, err)
		assert.True(t, has)
		require.NoError(t, c.Delete(ctx, "add"))
		has, err = c.Has(ctx, "add")
		require.NoError(t, err)
		assert.False(t, has)
		require.NoError(t, c.Delete(ctx, "add"), "deleting an absent key")

		// GetMany / SetMany / DeleteMany.
		require.NoError(t, echocache.SetMany(ctx, c, map[string]int{"k1": 1, "k2": 2, "k3": 0}, time.Hour))
		many, err := echocache.GetMany[int](ctx, c, []string{"k1", "k2", "k3", "missing"})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"k1": 1, "k2": 2, "k3": 0}, many)
		require.NoError(t, c.DeleteMany(ctx, "k1", "k3", "missing"))
		many, err = echocache.GetMany[int](ctx, c, []string{"k1", "k2", "k3"})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"k2": 2}, many)

		// Incr, and its interplay with Set and Get of integers.
		n, err := c.Incr(ctx, "hits", 5)
		require.NoError(t, err)
		assert.Equal(t, int64(5), n)
		n, err = c.Incr(ctx, "hits", -2)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n)
		h, err := echocache.Get[int](ctx, c, "hits")
		require.NoError(t, err)
		assert.Equal(t, 3, h)
		type visits uint32
		require.NoError(t, echocache.Set(ctx, c, "visits", visits(41), time.Hour))
		n, err = c.Incr(ctx, "visits", 1)
		require.NoError(t, err, "Incr of a value written by Set")
		assert.Equal(t, int64(42), n)
		vv, err := echocache.Get[visits](ctx, c, "visits")
		require.NoError(t, err)
		assert.Equal(t, visits(42), vv)
		require.NoError(t, echocache.Set(ctx, c, "u", u, time.Hour))
		_, err = c.Incr(ctx, "u", 1)
		require.ErrorIs(t, err, stores.ErrNotInteger, "Incr of a struct")

		// Values expire with their TTL.
		require.NoError(t, echocache.Set(ctx, c, "short", "x", b.minTTL))
		require.Eventually(t, func() bool {
			_, err := echocache.Get[string](ctx, c, "short")
			return errors.Is(err, echocache.ErrNotFound)
		}, 20*b.minTTL+5*time.Second, 20*time.Millisecond)
	})
}

// Typed values, memoized results and route entries share one namespace
// without colliding, and Clear empties all of them.
func TestTypedNamespaceAndClear(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s, _ := b.open(t)
		c := newTestCache(t, s, echocache.Config{})
		ctx := context.Background()

		m := echocache.Memoize(c, "ns", time.Hour, func(_ context.Context, a string) (string, error) { return "memo " + a, nil })
		_, err := m.Get(ctx, "a")
		require.NoError(t, err)
		tok, err := s.Get(ctx, "mv:ns")
		require.NoError(t, err)
		memoKey := "m:ns:" + string(tok) + ":s1:a"
		_, err = s.Get(ctx, memoKey)
		require.NoError(t, err, "memoized entry at %q", memoKey)

		// A typed key spelled like the memoized entry's or a route's full key
		// is a different entry.
		_, err = echocache.Get[string](ctx, c, memoKey)
		require.ErrorIs(t, err, echocache.ErrNotFound)
		require.NoError(t, echocache.Set(ctx, c, memoKey, "typed", time.Hour))
		require.NoError(t, echocache.Set(ctx, c, "mv:ns", "typed", time.Hour))
		v, err := m.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, "memo a", v)
		got, err := s.Get(ctx, "mv:ns")
		require.NoError(t, err)
		assert.Equal(t, tok, got, "version token untouched by a typed Set")

		// A page cached by the route middleware, next to the typed values.
		e := echo.New()
		pageCalls := 0
		e.GET("/page", func(ec echo.Context) error {
			pageCalls++
			return ec.String(http.StatusOK, fmt.Sprintf("page #%d", pageCalls))
		}, c.Cached(time.Hour))
		getPage := func() string {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/page", nil))
			require.Equal(t, http.StatusOK, rec.Code)
			return rec.Body.String()
		}
		assert.Equal(t, "page #1", getPage())
		assert.Equal(t, "page #1", getPage(), "page served from the cache")
		require.NoError(t, echocache.Set(ctx, c, "/page", "typed value", time.Hour))
		assert.Equal(t, "page #1", getPage(), "a typed value under the page's path does not touch the page")
		tv, err := echocache.Get[string](ctx, c, "/page")
		require.NoError(t, err)
		assert.Equal(t, "typed value", tv)

		require.NoError(t, c.Clear(ctx))
		for _, k := range []string{"v:" + memoKey, memoKey, "mv:ns", "v:/page"} {
			_, err := s.Get(ctx, k)
			require.ErrorIs(t, err, stores.ErrNotFound, "%q after Clear", k)
		}
		assert.Equal(t, "page #2", getPage(), "cached page after Clear")
	})
}

// With CrossProcessLock, processes sharing a store run a cold key's loader
// once; a waiter that outlives the lock runs its own loader.
func TestTypedCrossProcessLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b typedBackend) {
		s1, s2 := b.open(t)
		c1 := newTestCache(t, s1, echocache.Config{})
		c2 := newTestCache(t, s2, echocache.Config{})
		ctx := context.Background()

		t.Run("waiter gets the holder's value", func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			var n2 counter
			f1 := echocache.Function(c1, "xlock", time.Hour, func(context.Context) (string, error) {
				close(entered)
				<-release
				return "from process 1", nil
			}, echocache.CrossProcessLock(time.Minute))
			f2 := echocache.Function(c2, "xlock", time.Hour, func(context.Context) (string, error) {
				n2.n.Add(1)
				return "from process 2", nil
			}, echocache.CrossProcessLock(time.Minute))

			res1 := make(chan string, 1)
			go func() { v, _ := f1.Get(ctx); res1 <- v }()
			<-entered
			res2 := make(chan string, 1)
			go func() { v, _ := f2.Get(ctx); res2 <- v }()
			close(release)
			assert.Equal(t, "from process 1", <-res1)
			assert.Equal(t, "from process 1", <-res2, "second process waited for the first one's result")
			assert.Equal(t, int64(0), n2.calls(), "second process's loader calls")
		})

		t.Run("waiter runs its loader after the lock TTL", func(t *testing.T) {
			entered, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			defer func() { close(release); <-done }()
			lockTTL := b.minTTL
			f1 := echocache.Function(c1, "xlock-slow", time.Hour, func(context.Context) (string, error) {
				close(entered)
				<-release
				return "from process 1", nil
			}, echocache.CrossProcessLock(time.Hour))
			f2 := echocache.Function(c2, "xlock-slow", time.Hour, func(context.Context) (string, error) {
				return "from process 2", nil
			}, echocache.CrossProcessLock(lockTTL))
			go func() { _, _ = f1.Get(ctx); close(done) }()
			<-entered
			start := time.Now()
			v, err := f2.Get(ctx)
			require.NoError(t, err)
			assert.Equal(t, "from process 2", v)
			assert.GreaterOrEqual(t, time.Since(start), lockTTL, "the waiter gave up before its lock TTL")
		})
	})
}

// Memoize keys arguments the way template fragments key vary-on values:
// a time.Time (a TextMarshaler) by its text, a Keyer by its CacheKey.
func TestMemoizeTextMarshalerArgument(t *testing.T) {
	type since struct {
		User  string
		Since time.Time
	}
	ctx := context.Background()
	store, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	c := echocache.New(store)
	var calls atomic.Int64
	m := echocache.Memoize(c, "since", time.Hour, func(_ context.Context, a since) (string, error) {
		calls.Add(1)
		return a.User + "@" + a.Since.Format(time.RFC3339), nil
	})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, tc := range []struct {
		arg   since
		want  string
		calls int64
	}{
		{since{"ann", t0}, "ann@2026-01-02T03:04:05Z", 1},
		{since{"ann", t0}, "ann@2026-01-02T03:04:05Z", 1},
		{since{"ann", t0.Add(time.Hour)}, "ann@2026-01-02T04:04:05Z", 2},
		{since{"bob", t0}, "bob@2026-01-02T03:04:05Z", 3},
	} {
		got, err := m.Get(ctx, tc.arg)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "call %d", i)
		assert.Equal(t, tc.calls, calls.Load(), "call %d", i)
	}
}

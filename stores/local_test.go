package stores_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// openTier opens rawURL, which must give a local tier, and waits until
// its invalidation connections are up (Ping).
func openTier(t testing.TB, rawURL string) *stores.LocalTier {
	t.Helper()
	s, err := stores.Open(t.Context(), rawURL)
	require.NoError(t, err, "Open(%q)", rawURL)
	t.Cleanup(func() { s.Close() })
	tier, ok := s.(*stores.LocalTier)
	require.True(t, ok, "Open(%q) = %T; want a *stores.LocalTier", rawURL, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tier.Ping(ctx))
	return tier
}

// addQuery appends query parameters to a store URL that may have some.
func addQuery(rawURL, query string) string {
	if strings.Contains(rawURL, "?") {
		return rawURL + "&" + query
	}
	return rawURL + "?" + query
}

// TestLocalTierConformance runs the store suite on local tiers in front of
// each redis form, the file store and every memcached configuration. Every
// networked form runs with max_value_size=2MiB: below the suite's 5 MiB
// value, so that refused writes go through the tier, and (on memcached)
// above one item, so that chunked values do too; timeout=5s: a 2 MiB value
// on a loaded machine is slow.
func TestLocalTierConformance(t *testing.T) {
	const limit = "max_value_size=2MiB&"
	type form struct {
		name  string
		url   func(t *testing.T) string
		raw   func(t *testing.T) redis.Cmdable
		extra string
	}
	forms := []form{
		{"redis", func(t *testing.T) string { return servertest.Redis(t) }, func(t *testing.T) redis.Cmdable { return rawRedis(t) }, ""},
		{"cluster", func(t *testing.T) string { return clusterURL(servertest.RedisClusterAddrs(t), "") }, func(t *testing.T) redis.Cmdable { return rawCluster(t, servertest.RedisClusterAddrs(t)) }, ""},
		{"sentinel", func(t *testing.T) string {
			addrs, master := servertest.RedisSentinelAddrs(t)
			return sentinelURL(addrs, master, "")
		}, func(t *testing.T) redis.Cmdable {
			addrs, master := servertest.RedisSentinelAddrs(t)
			return rawFailover(t, addrs, master)
		}, ""},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			base := f.url(t)
			open := func(t *testing.T, extra string) stores.Store {
				return openTier(t, addQuery(base, limit+"local=8MiB&prefix="+url.QueryEscape(storetest.Namespace(t))+extra))
			}
			storetest.Run(t, func(t *testing.T) stores.Store { return open(t, "") }, conformanceOptions{
				MaxValueSize: 2 << 20,
				OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
					return open(t, "&default_ttl="+def.String())
				},
			}.plantIn(f.raw(t)))
		})
	}
	t.Run("file", func(t *testing.T) {
		// The copies live the default local_max_age (5s), longer than the
		// suite's entries: its expiry checks pass only if a copy ends with
		// its entry (the expiry each entry file records). max_entries=10000:
		// the default 500 would prune the suite's 1,200-key batch.
		dir := t.TempDir()
		open := func(t *testing.T, def time.Duration) stores.Store {
			return openTier(t, "file://"+dir+"?max_entries=10000&local=8MiB&prefix="+url.QueryEscape(storetest.Namespace(t))+"&default_ttl="+def.String())
		}
		neighbour := newFile(t, stores.FileConfig{Dir: dir, Prefix: "neighbour:"})
		storetest.Run(t, func(t *testing.T) stores.Store { return open(t, 0) }, storetest.Options{
			NoSizeLimit:        "the file store has no value size limit",
			ShortTTL:           200 * time.Millisecond,
			OpenWithDefaultTTL: open,
			Plant: func(t *testing.T, key string) {
				require.NoError(t, neighbour.Set(t.Context(), key, []byte("planted"), stores.NoExpiry))
			},
			PlantedExists: func(t *testing.T, key string) bool {
				_, err := neighbour.Get(t.Context(), key)
				return err == nil
			},
		})
	})
	for _, mc := range memcachedConfigs() {
		t.Run("memcached-"+mc.name, func(t *testing.T) {
			// The copies live the default local_max_age (5s), longer than
			// the suite's 2s entries: its expiry checks pass only if a copy
			// ends with its entry (the expiry recorded in the item's flags).
			base := mc.url(t) + limit + "timeout=5s&"
			open := func(t *testing.T, def time.Duration) stores.Store {
				return openTier(t, base+"local=8MiB&prefix="+url.QueryEscape(storetest.Namespace(t))+"&default_ttl="+def.String())
			}
			// The suite's limit is the one the store behind the tier enforces.
			maxValue := open(t, 0).(*stores.LocalTier).Shared().(*stores.Memcached).MaxValueSize()
			require.Equal(t, 2<<20, maxValue, "max_value_size=2MiB behind local=")
			// Keys of another namespace are planted through a store of its
			// own: the authenticated servers take no plain client.
			other, err := stores.Open(t.Context(), base+"prefix=other"+randomHex(6)+":")
			require.NoError(t, err)
			defer other.Close()
			storetest.Run(t, func(t *testing.T) stores.Store { return open(t, 0) }, storetest.Options{
				MaxValueSize:       maxValue,
				OpenWithDefaultTTL: open,
				Plant: func(t *testing.T, key string) {
					require.NoError(t, other.Set(t.Context(), key, []byte("planted"), stores.NoExpiry))
				},
				PlantedExists: func(t *testing.T, key string) bool {
					_, err := other.Get(t.Context(), key)
					if errors.Is(err, stores.ErrNotFound) {
						return false
					}
					require.NoError(t, err)
					return true
				},
			})
		})
	}
}

// TestLocalTierRefusedWrite checks, in front of redis and memcached, that
// a value the shared store refuses as too large leaves a miss where the
// tier held a copy of the previous value, in the tier as in the shared
// store, and that an Add it refuses leaves the present value readable.
func TestLocalTierRefusedWrite(t *testing.T) {
	forms := map[string]func(t *testing.T) string{
		"redis":     func(t *testing.T) string { return servertest.Redis(t) },
		"memcached": func(t *testing.T) string { return "memcached://" + servertest.Memcached(t) },
	}
	for name, base := range forms {
		t.Run(name, func(t *testing.T) {
			u := addQuery(base(t), "max_value_size=64KiB&prefix="+url.QueryEscape(storetest.Namespace(t)))
			tier := openTier(t, addQuery(u, "local=4MiB&local_max_age=1h"))
			plain, err := stores.Open(t.Context(), u)
			require.NoError(t, err)
			defer plain.Close()
			ctx := t.Context()
			over := make([]byte, 64<<10+1)
			// copies makes the tier hold a copy of each key's value.
			copies := func(keys ...string) {
				t.Helper()
				servedLocally(t, tier, func() {
					for _, k := range keys {
						require.NotEmpty(t, getString(t, tier, k))
					}
				})
			}
			miss := func(what, key string) {
				t.Helper()
				assert.Equal(t, "", getString(t, tier, key), "%s: the tier's read of %q", what, key)
				assert.Equal(t, "", getString(t, plain, key), "%s: the shared store's read of %q", what, key)
			}

			require.NoError(t, tier.Set(ctx, "k", []byte("old"), time.Hour))
			copies("k")
			require.ErrorIs(t, tier.Set(ctx, "k", over, time.Hour), stores.ErrTooLarge, "Set of 64 KiB + 1 over a copied key")
			miss("Set", "k")

			require.NoError(t, tier.SetMany(ctx, map[string][]byte{"a": []byte("old a"), "b": []byte("old b")}, time.Hour))
			copies("a", "b")
			require.ErrorIs(t, tier.SetMany(ctx, map[string][]byte{"a": []byte("new a"), "b": over}, time.Hour), stores.ErrTooLarge)
			miss("SetMany", "b")
			if v := getString(t, tier, "a"); v != "" {
				assert.Equal(t, "new a", v, "after a refused SetMany, the tier's read of a key it did not store")
			}

			require.NoError(t, tier.Set(ctx, "p", []byte("present"), time.Hour))
			copies("p")
			ok, err := tier.Add(ctx, "p", over, time.Hour)
			require.ErrorIs(t, err, stores.ErrTooLarge, "Add of 64 KiB + 1 over a present key")
			assert.False(t, ok)
			assert.Equal(t, "present", getString(t, tier, "p"), "a refused Add replaces nothing")
		})
	}
}

// TestLocalTierMemcachedExpiry checks that in front of memcached a copy
// ends with its entry, whatever local_max_age: once the shared store
// misses, so does the tier.
func TestLocalTierMemcachedExpiry(t *testing.T) {
	u := "memcached://" + servertest.Memcached(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
	tier := openTier(t, u+"&local=4MiB&local_max_age=1h")
	plain, err := stores.Open(t.Context(), u)
	require.NoError(t, err)
	defer plain.Close()
	ctx := t.Context()
	// A copy ends up to a second before its entry (memcached counts whole
	// seconds): a TTL of 1s leaves the copy anything from nothing to a
	// second, too little for servedLocally on a loaded machine. 2s leaves
	// more than one.
	for _, ttl := range []time.Duration{2 * time.Second, 3 * time.Second} {
		key := "k" + ttl.String()
		require.NoError(t, tier.Set(ctx, key, []byte("v"), ttl))
		servedLocally(t, tier, func() { require.Equal(t, "v", getString(t, tier, key)) })
		// The shared store's miss is read first: the tier's read after it
		// must miss too.
		pollUntil(t, ttl+5*time.Second, "the entry expired", func() bool {
			if getString(t, plain, key) != "" {
				return false
			}
			assert.Equal(t, "", getString(t, tier, key), "ttl %v: the tier's read after the shared store missed", ttl)
			return true
		})
	}
	// An entry without expiry is kept (until local_max_age).
	require.NoError(t, tier.Set(ctx, "forever", []byte("v"), stores.NoExpiry))
	servedLocally(t, tier, func() { require.Equal(t, "v", getString(t, tier, "forever")) })
	got, err := tier.GetMany(ctx, []string{"forever"})
	require.NoError(t, err)
	assert.Equal(t, "v", string(got["forever"]))
}

// TestLocalTierEntryExpiry checks, in front of every kind of store a tier
// fronts, that a copy ends with its entry however long local_max_age is:
// a value set with a short TTL and served from the tier's copy is a miss
// through the tier, by Get and by GetMany, once its entry expired (within
// a second of slack for a loaded machine), not when local_max_age (a
// minute) ends.
func TestLocalTierEntryExpiry(t *testing.T) {
	const ttl = 300 * time.Millisecond
	// memcached counts whole seconds: a TTL of 2s (an exptime of 3s) keeps
	// the copy at least a second (it ends a second before the expiry the
	// flags record) and the entry at most 3s.
	const mcTTL = 2 * time.Second
	forms := []struct {
		name string
		url  func(t *testing.T) string
		ttl  time.Duration
		ends time.Duration // the entry expires by then after the Set
	}{
		{"file", func(t *testing.T) string { return "file://" + t.TempDir() }, ttl, ttl},
		{"redis", func(t *testing.T) string { return servertest.Redis(t) }, ttl, ttl},
		{"cluster", func(t *testing.T) string { return clusterURL(servertest.RedisClusterAddrs(t), "") }, ttl, ttl},
		{"sentinel", func(t *testing.T) string {
			addrs, master := servertest.RedisSentinelAddrs(t)
			return sentinelURL(addrs, master, "")
		}, ttl, ttl},
		{"memcached", func(t *testing.T) string { return "memcached://" + servertest.Memcached(t) }, mcTTL, mcTTL + time.Second},
		{"memcached pool", func(t *testing.T) string {
			return "memcached://" + strings.Join(servertest.MemcachedPool(t), ",")
		}, mcTTL, mcTTL + time.Second},
		{"memcached ascii auth", func(t *testing.T) string { return servertest.MemcachedAuth(t) }, mcTTL, mcTTL + time.Second},
		{"saslmemcached", func(t *testing.T) string { return servertest.MemcachedSASL(t) }, mcTTL, mcTTL + time.Second},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			tier := openTier(t, addQuery(f.url(t), "local=4MiB&local_max_age=1m&prefix="+url.QueryEscape(storetest.Namespace(t))))
			ctx := t.Context()
			getMany := func(key string) string {
				t.Helper()
				got, err := tier.GetMany(ctx, []string{key})
				require.NoError(t, err)
				return string(got[key])
			}
			set := time.Now()
			require.NoError(t, tier.Set(ctx, "g", []byte("v"), f.ttl))
			require.NoError(t, tier.Set(ctx, "m", []byte("v"), f.ttl))
			servedLocally(t, tier, func() {
				require.Equal(t, "v", getString(t, tier, "g"), "Get before the entry expired")
				require.Equal(t, "v", getMany("m"), "GetMany before the entry expired")
			})
			var getMissed, manyMissed bool
			pollUntil(t, time.Until(set.Add(f.ends+time.Second)), "a miss through the tier after the entry expired", func() bool {
				getMissed = getMissed || getString(t, tier, "g") == ""
				manyMissed = manyMissed || getMany("m") == ""
				return getMissed && manyMissed
			})
			t.Logf("a miss through the tier %v after the Set with ttl %v", time.Since(set).Round(time.Millisecond), f.ttl)
		})
	}
}

// TestLocalTierURL checks the local and local_max_age parameters.
func TestLocalTierURL(t *testing.T) {
	redisURL := servertest.Redis(t)
	tests := []struct {
		name, url, want string
	}{
		{"nok, no size", redisURL + "?local=", `parameter local=""`},
		{"nok, zero size", redisURL + "?local=0", `want a size above zero`},
		{"nok, bad size", redisURL + "?local=lots", `parameter local="lots"`},
		{"nok, twice", redisURL + "?local=1MiB&local=2MiB", `parameter local given 2 times`},
		{"nok, age without size", redisURL + "?local_max_age=1s", `local_max_age without local`},
		{"nok, bad age", "memcached://127.0.0.1:11211?local=1MiB&local_max_age=soon", `parameter local_max_age="soon"`},
		{"nok, memory", "memory://?local=1MiB", `already lives in the process`},
		{"nok, null", "null://?local=1MiB", `already lives in the process`},
		{"nok, the store's own parameters still checked", redisURL + "?local=1MiB&bogus=1", `unknown parameter "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.Open(t.Context(), tt.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) = %T, nil; want an error naming %q", tt.url, s, tt.want)
			}
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("ok, the store keeps its parameters", func(t *testing.T) {
		ns := storetest.Namespace(t)
		tier := openTier(t, redisURL+"?prefix="+url.QueryEscape(ns)+"&local=1MiB&default_ttl=1h")
		require.NoError(t, tier.Set(t.Context(), "k", []byte("v"), stores.DefaultTTL))
		ttl, err := rawRedis(t).TTL(t.Context(), ns+"k").Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, 59*time.Minute, "default_ttl=1h behind local=: the key's TTL")
	})
}

// pollUntil calls f every millisecond until it returns true or the
// deadline passes; it returns how long it took.
func pollUntil(t *testing.T, within time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// servedLocally polls until five calls of read in a row are answered from
// tier's copies alone. (A copy made right after a write can be dropped
// when the write's own announcement arrives a moment later.)
func servedLocally(t *testing.T, tier *stores.LocalTier, read func()) {
	t.Helper()
	pollUntil(t, 2*time.Second, "reads served locally", func() bool {
		h, m := tier.LocalStats().Hits, tier.LocalStats().Misses
		for range 5 {
			read()
		}
		return tier.LocalStats().Hits > h && tier.LocalStats().Misses == m
	})
}

// getString reads key from s: its value, or "" for a miss.
func getString(t *testing.T, s stores.Store, key string) string {
	t.Helper()
	v, err := s.Get(t.Context(), key)
	if errors.Is(err, stores.ErrNotFound) {
		return ""
	}
	require.NoError(t, err)
	return string(v)
}

// TestLocalTierCoherence checks, on each redis form, that two tiers (as in
// two processes: each has its own connections) on one namespace serve
// their reads locally and see each other's writes, and those of a plain
// client, within the bound.
func TestLocalTierCoherence(t *testing.T) {
	forms := map[string]func(t *testing.T) (string, redis.Cmdable){
		"redis": func(t *testing.T) (string, redis.Cmdable) { return servertest.Redis(t), rawRedis(t) },
		"cluster": func(t *testing.T) (string, redis.Cmdable) {
			addrs := servertest.RedisClusterAddrs(t)
			return clusterURL(addrs, ""), rawCluster(t, addrs)
		},
		"sentinel": func(t *testing.T) (string, redis.Cmdable) {
			addrs, master := servertest.RedisSentinelAddrs(t)
			return sentinelURL(addrs, master, ""), rawFailover(t, addrs, master)
		},
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			base, raw := form(t)
			ns := storetest.Namespace(t)
			u := addQuery(base, "local=4MiB&prefix="+url.QueryEscape(ns))
			a, b := openTier(t, u), openTier(t, u)
			ctx := t.Context()
			const bound = time.Second // generous: the p99 is measured across processes in integration

			// Reads are served locally once a copy is there.
			require.NoError(t, a.Set(ctx, "k", []byte("v1"), time.Hour))
			require.Equal(t, "v1", getString(t, b, "k"))
			servedLocally(t, b, func() { require.Equal(t, "v1", getString(t, b, "k")) })

			changes := []struct {
				what   string
				change func()
				want   string
			}{
				{"overwrite", func() { require.NoError(t, a.Set(ctx, "k", []byte("v2"), time.Hour)) }, "v2"},
				{"Delete", func() { require.NoError(t, a.Delete(ctx, "k")) }, ""},
				{"Add", func() {
					ok, err := a.Add(ctx, "k", []byte("v3"), time.Hour)
					require.NoError(t, err)
					require.True(t, ok)
				}, "v3"},
				{"SetMany", func() { require.NoError(t, a.SetMany(ctx, map[string][]byte{"k": []byte("v4")}, time.Hour)) }, "v4"},
				{"DeleteMany", func() { require.NoError(t, a.DeleteMany(ctx, []string{"k", "other"})) }, ""},
				{"Incr", func() {
					_, err := a.Incr(ctx, "k", 7)
					require.NoError(t, err)
				}, "7"},
				{"Clear", func() { require.NoError(t, a.Clear(ctx)) }, ""},
				{"a plain client's SET", func() { require.NoError(t, raw.Set(ctx, ns+"k", "foreign", time.Hour).Err()) }, "foreign"},
				{"a plain client's DEL", func() { require.NoError(t, raw.Del(ctx, ns+"k").Err()) }, ""},
				{"expiry", func() { require.NoError(t, raw.Set(ctx, ns+"k", "short", 300*time.Millisecond).Err()) }, ""},
			}
			for _, c := range changes {
				if c.what == "expiry" {
					// The copy must be read before the entry expires.
					c.change()
					require.Equal(t, "short", getString(t, b, "k"))
				} else {
					// b holds a copy of what k holds now.
					getString(t, b, "k")
					getString(t, b, "k")
					c.change()
				}
				took := pollUntil(t, bound, c.what+" seen by the other tier", func() bool { return getString(t, b, "k") == c.want })
				t.Logf("%s seen after %v", c.what, took)
				// and by the writer at once (read your own writes)
				if c.what != "expiry" {
					assert.Equal(t, c.want, getString(t, a, "k"), "%s: the writer's own read", c.what)
				}
			}
			// GetMany serves copies and fills them, and sees changes too.
			require.NoError(t, a.SetMany(ctx, map[string][]byte{"m1": []byte("1"), "m2": []byte("2")}, stores.NoExpiry))
			got, err := b.GetMany(ctx, []string{"m1", "m2", "m3"})
			require.NoError(t, err)
			assert.Equal(t, map[string][]byte{"m1": []byte("1"), "m2": []byte("2")}, got)
			servedLocally(t, b, func() {
				got, err := b.GetMany(ctx, []string{"m1", "m2"})
				require.NoError(t, err)
				require.Len(t, got, 2)
			})
			require.NoError(t, a.Set(ctx, "m2", []byte("two"), stores.NoExpiry))
			pollUntil(t, bound, "GetMany after an overwrite", func() bool {
				got, err := b.GetMany(ctx, []string{"m1", "m2"})
				require.NoError(t, err)
				return string(got["m2"]) == "two" && string(got["m1"]) == "1"
			})
		})
	}
}

// TestLocalTierRestartedRedis kills and restarts the redis under two
// tiers while readers and a writer run: no read that starts after the
// restart returns a value from before it (the restarted redis is empty),
// the tiers answer from the shared store while their connection is down,
// and serve locally again once it is back.
func TestLocalTierRestartedRedis(t *testing.T) {
	srv := servertest.StartRedis(t)
	u := "redis://" + srv.Addr() + "/0?prefix=restart:&local=4MiB"
	a, b := openTier(t, u), openTier(t, u)
	ctx := t.Context()
	require.NoError(t, a.Set(ctx, "k", []byte("before"), stores.NoExpiry))
	require.Equal(t, "before", getString(t, b, "k"))
	require.Equal(t, "before", getString(t, a, "k"))

	var restarted atomic.Int64 // unix nanos when the restarted server answered
	var stale atomic.Int64
	var staleErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range []*stores.LocalTier{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				v, err := s.Get(context.Background(), "k")
				if r := restarted.Load(); err == nil && string(v) == "before" && r != 0 && start > r {
					stale.Add(1)
					staleErr.Store(string(v))
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	wg.Add(1)
	go func() { // writes to other keys keep going
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = a.Set(context.Background(), "other", []byte{byte(i)}, time.Minute)
			time.Sleep(time.Millisecond)
		}
	}()

	srv.Kill()
	pollUntil(t, 5*time.Second, "tiers not coherent while redis is down", func() bool {
		return !a.LocalStats().Coherent && !b.LocalStats().Coherent
	})
	require.NoError(t, srv.Restart())
	restarted.Store(time.Now().UnixNano())
	took := pollUntil(t, 5*time.Second, "tiers coherent again after the restart", func() bool {
		return a.LocalStats().Coherent && b.LocalStats().Coherent
	})
	t.Logf("tiers coherent %v after the restarted redis answered", took)
	assert.LessOrEqual(t, took, localReconnectBound, "tiers coherent again after the restart")
	// The restarted redis is empty: k is a miss, then a new value, served
	// locally.
	assert.Equal(t, "", getString(t, b, "k"))
	require.NoError(t, a.Set(ctx, "k", []byte("after"), stores.NoExpiry))
	pollUntil(t, time.Second, "the new value", func() bool { return getString(t, b, "k") == "after" })
	servedLocally(t, b, func() { getString(t, b, "k") })
	close(stop)
	wg.Wait()
	assert.Zero(t, stale.Load(), "reads that started after the restart returned the value from before it")
}

// localReconnectBound is how soon after its invalidation connection can
// be made again a tier is coherent: connected, subscribed and flushed.
const localReconnectBound = time.Second

// TestLocalTierTrackingConnectionLost drops a tier's invalidation
// connection while redis stays up and keeps serving the store's own
// connections: the connection is killed (CLIENT KILL TYPE pubsub) and
// kept from coming back (an ACL takes SUBSCRIBE away) while a plain
// go-redis client, not echocache, writes two keys the tier holds copies
// of; nobody hears those announcements. Under concurrent readers:
//   - while the connection is down, no read is answered from the tier's
//     copies (every read returns what redis holds);
//   - once SUBSCRIBE is allowed again the tier is coherent within
//     localReconnectBound, its copies from before the loss flushed: no
//     read that starts after that returns a value overwritten meanwhile;
//   - and it hears announcements again.
func TestLocalTierTrackingConnectionLost(t *testing.T) {
	srv := servertest.StartRedis(t)
	const prefix = "lost:"
	tier := openTier(t, "redis://"+srv.Addr()+"/0?prefix="+prefix+"&local=4MiB")
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	ctx := t.Context()
	// read is read by the concurrent readers; held is read only before
	// the loss and after the reconnect, so that its copy from before the
	// loss is still there when the connection comes back.
	for _, k := range []string{"read", "held"} {
		require.NoError(t, tier.Set(ctx, k, []byte("v1"), stores.NoExpiry))
		servedLocally(t, tier, func() { require.Equal(t, "v1", getString(t, tier, k)) })
	}

	var wrote atomic.Int64 // unix nanos when the plain client's write of read ended
	var stale atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				v, err := tier.Get(context.Background(), "read")
				if w := wrote.Load(); err == nil && w != 0 && start > w && string(v) != "v2" {
					stale.Add(1)
				}
				time.Sleep(200 * time.Microsecond)
			}
		})
	}

	require.NoError(t, raw.Do(ctx, "ACL", "SETUSER", "default", "-subscribe").Err())
	require.NoError(t, raw.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
	pollUntil(t, time.Second, "the tier knows its connection is lost", func() bool { return !tier.LocalStats().Coherent })
	require.NoError(t, raw.Set(ctx, prefix+"held", "v2", 0).Err())
	require.NoError(t, raw.Set(ctx, prefix+"read", "v2", 0).Err())
	wrote.Store(time.Now().UnixNano())

	// Down: reads go to redis, none to the copies.
	before := tier.LocalStats()
	for range 50 {
		require.Equal(t, "v2", getString(t, tier, "read"), "a read while the connection is down")
	}
	during := tier.LocalStats()
	require.False(t, during.Coherent, "the connection came back under an ACL without SUBSCRIBE")
	assert.Equal(t, before.Hits, during.Hits, "reads answered from the tier's copies while its connection was down")

	require.NoError(t, raw.Do(ctx, "ACL", "SETUSER", "default", "+subscribe").Err())
	took := pollUntil(t, 5*time.Second, "the tier coherent again", func() bool { return tier.LocalStats().Coherent })
	t.Logf("tier coherent %v after its connection could be made again; %d flushes in all", took, tier.LocalStats().Flushes)
	assert.LessOrEqual(t, took, localReconnectBound, "coherent again after the reconnect")
	assert.Equal(t, "v2", getString(t, tier, "held"), "a copy from before the loss, overwritten meanwhile, was served after the reconnect")
	servedLocally(t, tier, func() { require.Equal(t, "v2", getString(t, tier, "held")) })
	require.NoError(t, raw.Set(ctx, prefix+"held", "v3", 0).Err())
	pollUntil(t, time.Second, "an announcement heard after the reconnect", func() bool { return getString(t, tier, "held") == "v3" })
	close(stop)
	wg.Wait()
	assert.Zero(t, stale.Load(), "reads that started after the plain client's write returned the value from before it")
}

// TestLocalTierFlushAll checks that FLUSHALL, which Redis announces with a
// null key, drops every copy.
func TestLocalTierFlushAll(t *testing.T) {
	srv := servertest.StartRedis(t)
	tier := openTier(t, "redis://"+srv.Addr()+"/0?prefix=flush:&local=4MiB")
	ctx := t.Context()
	require.NoError(t, tier.Set(ctx, "k", []byte("v"), stores.NoExpiry))
	require.Equal(t, "v", getString(t, tier, "k"))
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	require.NoError(t, raw.FlushAll(ctx).Err())
	pollUntil(t, 2*time.Second, "FLUSHALL seen", func() bool { return getString(t, tier, "k") == "" })
}

// TestLocalTierMaxAge checks that in front of memcached, which announces
// nothing, a copy is served locally and lives at most local_max_age: a
// change made by another process is seen once it ends.
func TestLocalTierMaxAge(t *testing.T) {
	addr := servertest.Memcached(t)
	ns := storetest.Namespace(t)
	const maxAge = 300 * time.Millisecond
	u := "memcached://" + addr + "?local=4MiB&local_max_age=" + maxAge.String() + "&prefix=" + url.QueryEscape(ns)
	a, b := openTier(t, u), openTier(t, u)
	ctx := t.Context()
	require.NoError(t, a.Set(ctx, "k", []byte("v1"), time.Hour))
	require.Equal(t, "v1", getString(t, b, "k"))
	filled := time.Now()
	require.NoError(t, a.Set(ctx, "k", []byte("v2"), time.Hour))
	assert.Equal(t, "v2", getString(t, a, "k"), "the writer reads its own write")
	hits := b.LocalStats().Hits
	var sawOld bool
	took := pollUntil(t, 5*time.Second, "the other process's write", func() bool {
		v := getString(t, b, "k")
		if v == "v1" {
			sawOld = true
		}
		return v == "v2"
	})
	age := time.Since(filled)
	t.Logf("write seen %v after it, %v after the copy was made", took, age)
	assert.True(t, sawOld && b.LocalStats().Hits > hits, "the copy was served locally before it ended")
	// The copy ended after maxAge; reading it took a few ms more at most,
	// unless the machine is very loaded.
	assert.Less(t, age, maxAge+time.Second, "a copy outlived local_max_age")

	// The default is DefaultLocalMaxAge.
	tier, err := stores.NewLocalTier(must(stores.Open(ctx, "memcached://"+addr+"?prefix="+url.QueryEscape(ns))), stores.LocalConfig{})
	require.NoError(t, err)
	defer tier.Close()
	require.NoError(t, tier.Set(ctx, "d", []byte("x"), time.Hour))
	require.Equal(t, "x", getString(t, tier, "d"))
	require.NoError(t, a.Set(ctx, "d", []byte("y"), time.Hour))
	start := time.Now()
	pollUntil(t, stores.DefaultLocalMaxAge+5*time.Second, "a write seen after the default max age", func() bool { return getString(t, tier, "d") == "y" })
	assert.Less(t, time.Since(start), stores.DefaultLocalMaxAge+time.Second)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestLocalTierSentinelFailover checks, under concurrent reads, that after
// a Sentinel failover that leaves the old master running (SENTINEL
// FAILOVER: it answers as a master, ROLE included, until a sentinel
// reconfigures it seconds later), every tier drops its copies and listens
// to the new master, and to it only, and sees the writes made there.
// Several tiers, as in several processes: each one's go-redis asks a
// sentinel of its own, which may not have heard of the switch yet when the
// tier reconnects (a tier that followed go-redis's answer listened to the
// old master and served a stale copy until the old master was
// reconfigured).
func TestLocalTierSentinelFailover(t *testing.T) {
	s := servertest.StartRedisSentinel(t)
	u := "redis+sentinel://" + strings.Join(s.Addrs(), ",") + "/" + s.Name + "?prefix=fo:&local=4MiB"
	tiers := make([]*stores.LocalTier, 6)
	for i := range tiers {
		tiers[i] = openTier(t, u)
	}
	ctx := t.Context()
	require.NoError(t, tiers[0].Set(ctx, "k", []byte("v1"), stores.NoExpiry))
	flushes := make([]int64, len(tiers))
	for i, tier := range tiers {
		servedLocally(t, tier, func() { require.Equal(t, "v1", getString(t, tier, "k")) })
		flushes[i] = tier.LocalStats().Flushes
	}
	old, err := s.MasterAddr(ctx)
	require.NoError(t, err)

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, tier := range tiers[:2] {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = tier.Get(context.Background(), "k")
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer func() { close(stop); readers.Wait() }()

	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs()[0]})
	defer sc.Close()
	require.NoError(t, sc.Failover(ctx, s.Name).Err())
	var master string
	pollUntil(t, 20*time.Second, "every sentinel names a new master", func() bool {
		for _, n := range s.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: n.Addr()})
			a, err := c.GetMasterAddrByName(ctx, s.Name).Result()
			c.Close()
			if err != nil || net.JoinHostPort(a[0], a[1]) == old {
				return false
			}
			master = net.JoinHostPort(a[0], a[1])
		}
		return true
	})
	for i, tier := range tiers {
		pollUntil(t, 10*time.Second, fmt.Sprintf("tier %d flushed and coherent again", i), func() bool {
			return tier.LocalStats().Flushes > flushes[i] && tier.LocalStats().Coherent
		})
	}

	// No tier listens to the old master; each listens to the new one.
	oc := redis.NewClient(&redis.Options{Addr: old})
	defer oc.Close()
	role, err := oc.Do(ctx, "ROLE").Slice()
	if err == nil && len(role) > 0 {
		t.Logf("the old master's role when the tiers were coherent again: %v", role[0])
	}
	assert.Zero(t, trackingClients(t, old), "tracking connections on the old master %s", old)
	assert.Equal(t, len(tiers), trackingClients(t, master), "tracking connections on the new master %s", master)

	// Writes on the new master, by another client, are seen by every tier,
	// which then serves them locally.
	raw := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name, SentinelAddrs: s.Addrs()})
	defer raw.Close()
	for _, v := range []string{"v2", "v3"} {
		require.NoError(t, raw.Set(ctx, "fo:k", v, 0).Err())
		for i, tier := range tiers {
			pollUntil(t, 5*time.Second, fmt.Sprintf("tier %d sees %s", i, v), func() bool { return getString(t, tier, "k") == v })
		}
	}
	for _, tier := range tiers {
		servedLocally(t, tier, func() { require.Equal(t, "v3", getString(t, tier, "k")) })
	}
}

// trackingClients returns how many clients of the redis server at addr
// have CLIENT TRACKING on (flag t in CLIENT LIST).
func trackingClients(t *testing.T, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	list, err := c.ClientList(t.Context()).Result()
	require.NoError(t, err, "CLIENT LIST on %s", addr)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		for _, f := range strings.Fields(line) {
			if flags, ok := strings.CutPrefix(f, "flags="); ok && strings.Contains(flags, "t") {
				n++
			}
		}
	}
	return n
}

// TestLocalTierClusterFailover kills the master of a key under tiers on a
// cluster of their own: the tiers stop answering locally, follow the
// promoted replica, and then see its writes.
func TestLocalTierClusterFailover(t *testing.T) {
	c := servertest.StartRedisCluster(t)
	u := clusterURL(c.Addrs(), "prefix=cfo:&local=4MiB")
	a, b := openTier(t, u), openTier(t, u)
	ctx := t.Context()
	require.NoError(t, a.Set(ctx, "k", []byte("v1"), stores.NoExpiry))
	require.Equal(t, "v1", getString(t, b, "k"))
	master, _, err := c.MasterOf(ctx, "cfo:k")
	require.NoError(t, err)
	master.Kill()
	pollUntil(t, 5*time.Second, "tier not coherent with a master down", func() bool { return !b.LocalStats().Coherent })
	require.NoError(t, c.WaitHealthy(ctx))
	pollUntil(t, 10*time.Second, "tier coherent on the promoted replica", func() bool { return b.LocalStats().Coherent })
	raw := rawCluster(t, c.Addrs())
	pollUntil(t, 10*time.Second, "a write on the promoted replica", func() bool {
		if raw.Set(ctx, "cfo:k", "v2", 0).Err() != nil {
			return false
		}
		return getString(t, b, "k") == "v2"
	})
	require.NoError(t, raw.Set(ctx, "cfo:k", "v3", 0).Err())
	pollUntil(t, time.Second, "a second write", func() bool { return getString(t, b, "k") == "v3" })
}

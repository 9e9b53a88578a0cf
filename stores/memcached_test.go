package stores_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// memcachedPrefix turns a storetest namespace into a legal memcached prefix
// (it is already one; this only keeps it short).
func memcachedPrefix(testing.TB) string {
	return "mc" + randomHex(6) + ":"
}

// rawMemcached returns a plain client on the test server.
func rawMemcached(t testing.TB) *memcache.Client {
	t.Helper()
	c := memcache.New(servertest.Memcached(t))
	t.Cleanup(func() { c.Close() })
	return c
}

func newMemcached(t testing.TB, cfg stores.MemcachedConfig) *stores.Memcached {
	t.Helper()
	if cfg.Servers == nil {
		cfg.Servers = []string{servertest.Memcached(t)}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = memcachedPrefix(t)
	}
	s, err := stores.NewMemcached(cfg)
	require.NoError(t, err)
	return s
}

// memcachedOptions returns the suite options for a memcached whose raw
// client (for planting) is raw.
func memcachedOptions(raw *memcache.Client, open func(t *testing.T, def time.Duration) stores.Store) storetest.Options {
	other := "other" + randomHex(6) + ":"
	return storetest.Options{
		MaxValueSize:       stores.DefaultMemcachedMaxItemSize - 512,
		OpenWithDefaultTTL: open,
		Plant: func(t *testing.T, key string) {
			require.NoError(t, raw.Set(&memcache.Item{Key: other + key, Value: []byte("planted")}))
		},
		PlantedExists: func(t *testing.T, key string) bool {
			_, err := raw.Get(other + key)
			if errors.Is(err, memcache.ErrCacheMiss) {
				return false
			}
			require.NoError(t, err)
			return true
		},
	}
}

func TestMemcachedConformance(t *testing.T) {
	addr := servertest.Memcached(t)
	open := func(t *testing.T, def time.Duration) stores.Store {
		s, err := stores.Open(t.Context(), "memcached://"+addr+"?prefix="+url.QueryEscape(storetest.Namespace(t))+"&default_ttl="+def.String())
		require.NoError(t, err)
		return s
	}
	storetest.Run(t, func(t *testing.T) stores.Store { return open(t, 0) }, memcachedOptions(rawMemcached(t), open))
}

func TestMemcachedAuthConformance(t *testing.T) {
	base := servertest.MemcachedAuth(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	pass, _ := u.User.Password()
	// The raw client for planting authenticates with the store's own dialer.
	rawStore, err := stores.NewMemcached(stores.MemcachedConfig{Servers: []string{u.Host}, Username: u.User.Username(), Password: pass, Prefix: "raw:"})
	require.NoError(t, err)
	defer rawStore.Close()
	open := func(t *testing.T, def time.Duration) stores.Store {
		s, err := stores.Open(t.Context(), base+"?prefix="+url.QueryEscape(storetest.Namespace(t))+"&default_ttl="+def.String())
		require.NoError(t, err)
		return s
	}
	opt := memcachedOptions(nil, open)
	other := "other" + randomHex(6) + ":"
	// On the authenticated server, plant through a second namespace's store:
	// a plain client cannot talk to it.
	opt.Plant = func(t *testing.T, key string) {
		require.NoError(t, rawStore.Set(t.Context(), other+key, []byte("planted"), stores.NoExpiry))
	}
	opt.PlantedExists = func(t *testing.T, key string) bool {
		_, err := rawStore.Get(t.Context(), other+key)
		if errors.Is(err, stores.ErrNotFound) {
			return false
		}
		require.NoError(t, err)
		return true
	}
	storetest.Run(t, func(t *testing.T) stores.Store { return open(t, 0) }, opt)
}

func TestMemcachedBadCredentials(t *testing.T) {
	u, err := url.Parse(servertest.MemcachedAuth(t))
	require.NoError(t, err)
	user := u.User.Username()
	u.User = url.UserPassword(user, "not-the-password")
	u.RawQuery = "prefix=" + memcachedPrefix(t)
	s, err := stores.Open(t.Context(), u.String())
	require.NoError(t, err, "Open does not contact the server")
	defer s.Close()

	_, err = s.Get(t.Context(), "k")
	require.ErrorIs(t, err, stores.ErrAuth, "first call with bad credentials")
	assert.NotErrorIs(t, err, stores.ErrNotFound, "bad credentials must not look like a miss")
	assert.Contains(t, err.Error(), strconv.Quote(user), "the error names the user")
	assert.NotContains(t, err.Error(), "not-the-password", "the error shows the password")

	require.ErrorIs(t, s.Set(t.Context(), "k", []byte("v"), 0), stores.ErrAuth, "Set with bad credentials")
	_, err = stores.Incr(t.Context(), s, "n", 1)
	require.ErrorIs(t, err, stores.ErrAuth, "Incr with bad credentials")
	require.ErrorIs(t, stores.Ping(t.Context(), s), stores.ErrAuth, "Ping with bad credentials")
}

// TestMemcachedNoCredentialsOnAuthServer checks that a store without
// credentials fails clearly on a server that requires them.
func TestMemcachedNoCredentialsOnAuthServer(t *testing.T) {
	u, err := url.Parse(servertest.MemcachedAuth(t))
	require.NoError(t, err)
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{u.Host}})
	defer s.Close()
	_, err = s.Get(t.Context(), "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound)
}

// TestMemcachedCredentialsNotStored checks that the authentication command
// leaves nothing readable on a server that does not check credentials.
func TestMemcachedCredentialsNotStored(t *testing.T) {
	s := newMemcached(t, stores.MemcachedConfig{Username: "someone", Password: "secret"})
	defer s.Close()
	require.NoError(t, s.Set(t.Context(), "k", []byte("v"), 0), "credentials on a server without authentication")
	_, err := rawMemcached(t).Get("echocache-auth")
	require.ErrorIs(t, err, memcache.ErrCacheMiss, "the credentials were stored on the server")
}

// TestMemcachedHostileKeys checks that keys memcached cannot take are
// hashed, and that no key collides with another key's hash.
func TestMemcachedHostileKeys(t *testing.T) {
	ctx := t.Context()
	s := newMemcached(t, stores.MemcachedConfig{})
	defer s.Close()
	long := strings.Repeat("x", 300)
	hash := func(k string) string {
		sum := sha256.Sum256([]byte(k))
		return "#" + hex.EncodeToString(sum[:])
	}
	keys := []string{
		long,
		hash(long),       // a plain key spelled like long's hashed form
		"#" + long,       // marker plus an illegal key
		hash(hash(long)), // the hash of the hash
		"with space",
		hash("with space"),
		"with_space",
		"#",
		"",
		"nl\n", "nl\r", "tab\t", "del\x7f", "nul\x00",
		strings.Repeat("y", 200), // legal alone, too long with the prefix and generation
		strings.Repeat("y", 201),
		strings.Repeat("é", 125), // 250 bytes of UTF-8
	}
	for i, k := range keys {
		require.NoError(t, s.Set(ctx, k, []byte(strconv.Itoa(i)), 0), "Set(%q)", k)
	}
	for i, k := range keys {
		v, err := s.Get(ctx, k)
		require.NoError(t, err, "Get(%q)", k)
		assert.Equal(t, strconv.Itoa(i), string(v), "Get(%q): two keys collided", k)
	}
	got, err := s.GetMany(ctx, keys)
	require.NoError(t, err)
	for i, k := range keys {
		assert.Equal(t, strconv.Itoa(i), string(got[k]), "GetMany[%q]", k)
	}
	for i, k := range keys {
		n, err := s.Incr(ctx, k+"/n", int64(i))
		require.NoError(t, err, "Incr(%q)", k+"/n")
		assert.Equal(t, int64(i), n)
	}
	require.NoError(t, s.DeleteMany(ctx, keys[:2]))
	_, err = s.Get(ctx, keys[0])
	require.ErrorIs(t, err, stores.ErrNotFound)
	v, err := s.Get(ctx, keys[2])
	require.NoError(t, err)
	assert.Equal(t, "2", string(v), "deleting a key removed another one")
}

// TestMemcachedClearIsNamespaced checks that Clear leaves keys written
// directly under other prefixes, and keys of other stores on the same
// server, untouched.
func TestMemcachedClearIsNamespaced(t *testing.T) {
	ctx := t.Context()
	raw := rawMemcached(t)
	prefix := memcachedPrefix(t)
	s := newMemcached(t, stores.MemcachedConfig{Prefix: prefix})
	defer s.Close()
	other := newMemcached(t, stores.MemcachedConfig{})
	defer other.Close()

	require.NoError(t, s.Set(ctx, "k", []byte("mine"), 0))
	require.NoError(t, other.Set(ctx, "k", []byte("other"), 0))
	planted := []string{"unrelated" + randomHex(4), prefix + "planted", prefix[:len(prefix)-1]}
	for _, k := range planted {
		require.NoError(t, raw.Set(&memcache.Item{Key: k, Value: []byte("planted")}))
	}
	require.NoError(t, s.Clear(ctx))

	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)
	v, err := other.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "other", string(v))
	for _, k := range planted {
		it, err := raw.Get(k)
		require.NoError(t, err, "Clear removed %q (written directly on the server)", k)
		assert.Equal(t, "planted", string(it.Value))
	}
}

// TestMemcachedGenerationAcrossStores plays two processes on one namespace:
// a Clear by one is seen by the other's next read and exact write.
func TestMemcachedGenerationAcrossStores(t *testing.T) {
	ctx := t.Context()
	prefix := memcachedPrefix(t)
	a := newMemcached(t, stores.MemcachedConfig{Prefix: prefix})
	defer a.Close()
	b := newMemcached(t, stores.MemcachedConfig{Prefix: prefix})
	defer b.Close()

	require.NoError(t, a.Set(ctx, "k", []byte("v"), 0))
	require.NoError(t, a.Set(ctx, "lock", []byte("a"), 0))
	_, err := a.Incr(ctx, "n", 5)
	require.NoError(t, err)
	v, err := b.Get(ctx, "k")
	require.NoError(t, err, "b reads a's entry")
	assert.Equal(t, "v", string(v))

	require.NoError(t, a.Clear(ctx))

	_, err = b.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound, "b still reads an entry a cleared")
	got, err := b.GetMany(ctx, []string{"k", "lock"})
	require.NoError(t, err)
	assert.Empty(t, got, "b's GetMany still reads entries a cleared")

	// b knows the new generation now; clear again behind its back and
	// check the exact writes, which must not use what b saw last.
	require.NoError(t, a.Clear(ctx))
	require.NoError(t, a.Set(ctx, "lock", []byte("a2"), 0))
	ok, err := b.Add(ctx, "lock", []byte("b"), 0)
	require.NoError(t, err)
	assert.False(t, ok, "b's Add won a lock a holds in the current generation")
	n, err := b.Incr(ctx, "n", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "b's Incr counted from before the Clear")
	require.NoError(t, b.Delete(ctx, "lock"))
	_, err = a.Get(ctx, "lock")
	require.ErrorIs(t, err, stores.ErrNotFound, "b's Delete missed the current generation")
}

// TestMemcachedGenerationEvicted checks that a lost generation counter (an
// eviction) makes the namespace empty rather than breaking it.
func TestMemcachedGenerationEvicted(t *testing.T) {
	ctx := t.Context()
	prefix := memcachedPrefix(t)
	s := newMemcached(t, stores.MemcachedConfig{Prefix: prefix})
	defer s.Close()
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))
	require.NoError(t, rawMemcached(t).Delete(prefix+"gen"), "the counter lives under prefix+\"gen\"")

	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)
	require.NoError(t, s.Set(ctx, "k", []byte("v2"), 0))
	v, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v2", string(v))
	require.NoError(t, rawMemcached(t).Delete(prefix+"gen"))
	require.NoError(t, s.Clear(ctx), "Clear without a counter")
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)
}

// TestMemcachedLongTTL checks the 30-day rule: a longer TTL is sent as an
// absolute time (sent as relative seconds, memcached would read it as a
// date in 1970 and expire the entry at once).
func TestMemcachedLongTTL(t *testing.T) {
	ctx := t.Context()
	s := newMemcached(t, stores.MemcachedConfig{})
	defer s.Close()
	for _, ttl := range []time.Duration{29 * 24 * time.Hour, 30 * 24 * time.Hour, 31 * 24 * time.Hour, 20 * 365 * 24 * time.Hour, math.MaxInt64} {
		key := ttl.String()
		require.NoError(t, s.Set(ctx, key, []byte("v"), ttl))
		_, err := s.Get(ctx, key)
		require.NoError(t, err, "entry with a %v TTL", ttl)
		ok, err := s.Add(ctx, "add"+key, []byte("v"), ttl)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = s.Get(ctx, "add"+key)
		require.NoError(t, err, "entry added with a %v TTL", ttl)
	}
}

// TestMemcachedIncrSignedRange checks the ends of the int64 range, which
// memcached's unsigned counters do not have.
func TestMemcachedIncrSignedRange(t *testing.T) {
	ctx := t.Context()
	s := newMemcached(t, stores.MemcachedConfig{})
	defer s.Close()

	require.NoError(t, s.Set(ctx, "min", []byte(strconv.FormatInt(math.MinInt64+1, 10)), 0))
	n, err := s.Incr(ctx, "min", -1)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MinInt64), n)
	_, err = s.Incr(ctx, "min", -1)
	require.ErrorIs(t, err, stores.ErrNotInteger, "Incr below MinInt64")

	n, err = s.Incr(ctx, "max", math.MaxInt64)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), n)
	for _, delta := range []int64{1, 1 << 40, 1<<59 - 1, 1 << 59, math.MaxInt64} {
		_, err = s.Incr(ctx, "max", delta)
		require.ErrorIs(t, err, stores.ErrNotInteger, "Incr(%d) past MaxInt64", delta)
		v, err := s.Get(ctx, "max")
		require.NoError(t, err)
		assert.Equal(t, strconv.FormatInt(math.MaxInt64, 10), string(v), "a refused Incr(%d) changed the counter", delta)
	}
	require.NoError(t, s.Set(ctx, "near", []byte(strconv.FormatInt(math.MaxInt64-10, 10)), 0))
	n, err = s.Incr(ctx, "near", 10)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), n)

	for _, bad := range []string{"007", "+7", " 7", "-0", "1e3"} {
		require.NoError(t, s.Set(ctx, "bad", []byte(bad), 0))
		_, err = s.Incr(ctx, "bad", -1)
		require.ErrorIs(t, err, stores.ErrNotInteger, "Incr(-1) of %q (Redis refuses it)", bad)
	}
}

// TestMemcachedTooLargeDeadServer checks that an oversized value is
// refused as too large even when the server cannot be reached to remove
// the key's previous value: the store points at a closed port, and the
// error is ErrTooLarge, not only a connection error.
func TestMemcachedTooLargeDeadServer(t *testing.T) {
	port, err := servertest.FreePort()
	require.NoError(t, err)
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, MaxItemSize: 64 << 10})
	defer s.Close()
	big := make([]byte, s.MaxValueSize()+1)
	require.ErrorIs(t, s.Set(t.Context(), "k", big, 0), stores.ErrTooLarge)
	_, err = s.Add(t.Context(), "k", big, 0)
	require.ErrorIs(t, err, stores.ErrTooLarge)
	require.ErrorIs(t, s.SetMany(t.Context(), map[string][]byte{"a": nil, "b": big}, 0), stores.ErrTooLarge)
}

// TestMemcachedServerTooLarge checks that the server's own refusal of an
// item (a MaxItemSize set above the server's -I) is ErrTooLarge too, and
// leaves the key a miss, through Set and SetMany.
func TestMemcachedServerTooLarge(t *testing.T) {
	ctx := t.Context()
	s := newMemcached(t, stores.MemcachedConfig{MaxItemSize: 8 << 20})
	defer s.Close()
	require.NoError(t, s.Set(ctx, "k", []byte("old"), 0))
	err := s.Set(ctx, "k", make([]byte, 2<<20), 0)
	require.ErrorIs(t, err, stores.ErrTooLarge)
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound, "a SET the server refused left the previous value")

	require.NoError(t, s.Set(ctx, "m", []byte("old"), 0))
	err = s.SetMany(ctx, map[string][]byte{"m": make([]byte, 2<<20), "n": []byte("new")}, 0)
	require.ErrorIs(t, err, stores.ErrTooLarge)
	_, err = s.Get(ctx, "m")
	require.ErrorIs(t, err, stores.ErrNotFound, "a SetMany item the server refused left the previous value")
	require.NoError(t, s.Set(ctx, "after", []byte("v"), 0), "the store works after a refused item")
}

// TestMemcachedWriteCutOnNetwork checks that a Set whose connection is cut
// half-way through the value (a real loopback proxy between the store and
// memcached) leaves the key a miss, not its previous value, through Set and
// SetMany.
func TestMemcachedWriteCutOnNetwork(t *testing.T) {
	ctx := t.Context()
	p := faultproxy.Start(t, servertest.Memcached(t))
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{p.Addr()}, MaxIdleConns: 1})
	defer s.Close()
	require.NoError(t, s.Set(ctx, "k", []byte("old"), 0))
	require.NoError(t, s.Set(ctx, "m", []byte("old"), 0))
	p.CutAfter(64 << 10)

	require.Error(t, s.Set(ctx, "k", make([]byte, 256<<10), 0), "a Set cut on the network")
	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound, "a Set cut on the network left the previous value")

	require.Error(t, s.SetMany(ctx, map[string][]byte{"m": make([]byte, 256<<10)}, 0), "a SetMany cut on the network")
	_, err = s.Get(ctx, "m")
	require.ErrorIs(t, err, stores.ErrNotFound, "a SetMany cut on the network left the previous value")
}

func TestMemcachedDeadServer(t *testing.T) {
	port, err := servertest.FreePort()
	require.NoError(t, err)
	s, err := stores.Open(t.Context(), fmt.Sprintf("memcached://127.0.0.1:%d?prefix=dead:", port))
	require.NoError(t, err)
	defer s.Close()

	start := time.Now()
	_, err = s.Get(context.Background(), "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound, "a dead server is not a miss")
	require.Error(t, s.Set(context.Background(), "k", []byte("v"), 0))
	_, err = stores.Incr(context.Background(), s, "n", 1)
	require.Error(t, err)
	require.Error(t, s.Clear(context.Background()))
	require.Error(t, stores.Ping(context.Background(), s))
	assert.Less(t, time.Since(start), 3*time.Second, "calls to a dead server took too long")
}

func TestMemcachedSeveralServers(t *testing.T) {
	// The same server twice under two names spreads keys over two
	// "servers" while both see one another's writes.
	addr := servertest.Memcached(t)
	_, port, _ := strings.Cut(addr, ":")
	s, err := stores.Open(t.Context(), "memcached://"+addr+",localhost:"+port+"?prefix="+memcachedPrefix(t))
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	items := map[string][]byte{}
	keys := []string{}
	for i := range 50 {
		k := fmt.Sprint("k", i)
		items[k] = []byte(k)
		keys = append(keys, k)
	}
	require.NoError(t, stores.SetMany(ctx, s, items, 0))
	got, err := stores.GetMany(ctx, s, keys)
	require.NoError(t, err)
	assert.Equal(t, items, got)
	require.NoError(t, s.Clear(ctx))
	got, err = stores.GetMany(ctx, s, keys)
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, stores.Ping(ctx, s))
}

func TestMemcachedConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  stores.MemcachedConfig
		want string
	}{
		{"nok, no servers", stores.MemcachedConfig{}, "no servers"},
		{"nok, prefix with a space", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1"}, Prefix: "a b:"}, "prefix"},
		{"nok, prefix too long", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1"}, Prefix: strings.Repeat("p", 129)}, "prefix"},
		{"nok, password without user", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1"}, Password: "x"}, "username"},
		{"nok, user with a space", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1"}, Username: "a b", Password: "x"}, "space"},
		{"nok, tiny MaxItemSize", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1"}, MaxItemSize: 100}, "MaxItemSize"},
		{"nok, negative DefaultTTL", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1"}, DefaultTTL: -1}, "DefaultTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stores.NewMemcached(tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestMemcachedURLErrors(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"nok, no host", "memcached://", "no server"},
		{"nok, no host with params", "memcached:///?prefix=a:", "no server"},
		{"nok, empty server in list", "memcached://127.0.0.1:11211,,127.0.0.1:11212", "empty server"},
		{"nok, trailing comma", "memcached://127.0.0.1:11211,", `":11211,"`},
		{"nok, bad port", "memcached://127.0.0.1:11211,127.0.0.1:99999", "99999"},
		{"nok, path", "memcached://127.0.0.1:11211/db", `"/db"`},
		{"nok, unknown parameter", "memcached://127.0.0.1:11211?db=1", `"db"`},
		{"nok, empty prefix", "memcached://127.0.0.1:11211?prefix=", "prefix"},
		{"nok, prefix with a space", "memcached://127.0.0.1:11211?prefix=a%20b", "prefix"},
		{"nok, bad max_item_size", "memcached://127.0.0.1:11211?max_item_size=big", "max_item_size"},
		{"nok, bad timeout", "memcached://127.0.0.1:11211?timeout=fast", "timeout"},
		{"nok, bad max_idle_conns", "memcached://127.0.0.1:11211?max_idle_conns=-1", "max_idle_conns"},
		{"nok, bad default_ttl", "memcached://127.0.0.1:11211?default_ttl=1x", "default_ttl"},
		{"nok, password without user", "memcached://:secret@127.0.0.1:11211", "username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.Open(t.Context(), tt.url)
			require.Error(t, err, "Open(%q)", tt.url)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.want, "Open(%q): the error must name the problem", tt.url)
			assert.NotContains(t, err.Error(), "secret", "the error shows the password")
		})
	}
	for _, ok := range []string{
		"memcached://127.0.0.1:11211",
		"memcached://127.0.0.1",
		"memcached://127.0.0.1:11211,127.0.0.1:11212?prefix=app:&default_ttl=5m&timeout=1s&max_item_size=2MiB&max_idle_conns=4",
		"memcached://user:pass@127.0.0.1:11211",
		"memcached://[::1]:11211",
	} {
		t.Run("ok, "+ok, func(t *testing.T) {
			s, err := stores.Open(t.Context(), ok)
			require.NoError(t, err, "Open(%q)", ok)
			require.NoError(t, s.Close())
		})
	}
}

func TestMemcachedMaxItemSizeFromURL(t *testing.T) {
	s, err := stores.Open(t.Context(), "memcached://"+servertest.Memcached(t)+"?prefix="+memcachedPrefix(t)+"&max_item_size=64KiB")
	require.NoError(t, err)
	defer s.Close()
	require.ErrorIs(t, s.Set(t.Context(), "k", make([]byte, 64<<10), 0), stores.ErrTooLarge)
	require.NoError(t, s.Set(t.Context(), "k", make([]byte, 32<<10), 0))
}

func BenchmarkMemcachedGet(b *testing.B) {
	ctx := context.Background()
	s := newMemcached(b, stores.MemcachedConfig{})
	defer s.Close()
	value := []byte(strings.Repeat("v", 512))
	require.NoError(b, s.Set(ctx, "k", value, time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemcachedSet(b *testing.B) {
	ctx := context.Background()
	s := newMemcached(b, stores.MemcachedConfig{})
	defer s.Close()
	value := []byte(strings.Repeat("v", 512))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", value, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleNewMemcached() {
	store, err := stores.NewMemcached(stores.MemcachedConfig{
		Servers:  []string{"127.0.0.1:11211"},
		Username: "app", // memcached started with -Y authfile
		Password: "secret",
		Prefix:   "myapp:",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	if err := stores.Ping(context.Background(), store); errors.Is(err, stores.ErrAuth) {
		fmt.Println("check the memcached credentials:", err)
	}
}

// TestMemcachedHungServer checks that Timeout bounds a call to a server
// that accepts connections but never answers, with and without
// authentication (which waits for the server's answer when dialing).
func TestMemcachedHungServer(t *testing.T) {
	for _, user := range []string{"", "someone"} {
		s := newMemcached(t, stores.MemcachedConfig{Servers: []string{silentServer(t)}, Timeout: 200 * time.Millisecond, Username: user})
		start := time.Now()
		_, err := s.Get(context.Background(), "k")
		require.Error(t, err)
		assert.NotErrorIs(t, err, stores.ErrNotFound)
		assert.Less(t, time.Since(start), 2*time.Second, "Get from a hung server (user %q) took too long", user)
		s.Close()
	}
}

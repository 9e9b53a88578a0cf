package stores_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/mcbin"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// memcachedPrefix returns a namespace of the test's own.
func memcachedPrefix(testing.TB) string {
	return "mc" + randomHex(6) + ":"
}

// rawMemcached returns a plain gomemcache client on addr (the shared
// server when addr is empty), for planting and inspecting items.
func rawMemcached(t testing.TB, addr ...string) *memcache.Client {
	t.Helper()
	if len(addr) == 0 {
		addr = []string{servertest.Memcached(t)}
	}
	c := memcache.New(addr...)
	c.Timeout = 5 * time.Second
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
	t.Cleanup(func() { s.Close() })
	return s
}

// memcachedConfigs are the ways the store talks to memcached, each with a
// URL to open it without a prefix, and a store of another namespace on the
// same servers for planting keys there.
type memcachedConfig struct {
	name string
	url  func(t *testing.T) string // ends with '?' or '&', ready for parameters
}

func memcachedConfigs() []memcachedConfig {
	return []memcachedConfig{
		{"binary", func(t *testing.T) string { return "memcached://" + servertest.Memcached(t) + "?" }},
		{"ascii", func(t *testing.T) string { return "memcached://" + servertest.Memcached(t) + "?protocol=ascii&" }},
		{"pool", func(t *testing.T) string {
			return "memcached://" + strings.Join(servertest.MemcachedPool(t), ",") + "?"
		}},
		{"pool-ascii", func(t *testing.T) string {
			return "memcached://" + strings.Join(servertest.MemcachedPool(t), ",") + "?protocol=ascii&"
		}},
		{"auth-ascii", func(t *testing.T) string { return servertest.MemcachedAuth(t) + "?" }},
		{"sasl", func(t *testing.T) string { return servertest.MemcachedSASL(t) + "?" }},
	}
}

// TestMemcachedConformance runs the store suite on every configuration:
// the binary and the ASCII protocol on one server and on a pool of three,
// memcached's ASCII authentication (-Y) and SASL (-S).
func TestMemcachedConformance(t *testing.T) {
	for _, mc := range memcachedConfigs() {
		t.Run(mc.name, func(t *testing.T) {
			base := mc.url(t)
			open := func(t *testing.T, def time.Duration) stores.Store {
				// timeout=5s: a 5 MiB value on a loaded machine is slow.
				s, err := stores.Open(t.Context(), base+"timeout=5s&prefix="+url.QueryEscape(storetest.Namespace(t))+"&default_ttl="+def.String())
				require.NoError(t, err)
				return s
			}
			// Keys of another namespace are planted through a store of
			// its own: the authenticated servers take no plain client.
			planter := open(t, 0)
			t.Cleanup(func() { planter.Close() })
			max := planter.(*stores.Memcached).MaxValueSize()
			require.Equal(t, 32*(stores.DefaultMemcachedMaxItemSize-512), max, "the largest value by default")
			storetest.Run(t, func(t *testing.T) stores.Store { return open(t, 0) }, storetest.Options{
				MaxValueSize:       max,
				OpenWithDefaultTTL: open,
				Plant: func(t *testing.T, key string) {
					require.NoError(t, planter.Set(t.Context(), key, []byte("planted"), stores.NoExpiry))
				},
				PlantedExists: func(t *testing.T, key string) bool {
					_, err := planter.Get(t.Context(), key)
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

// TestMemcachedBadCredentials checks both authentications: a wrong
// password is ErrAuth at Ping and on every call (also once the server's
// breaker skips it), names the user, never shows the password, and is
// never a miss.
func TestMemcachedBadCredentials(t *testing.T) {
	for _, base := range []string{servertest.MemcachedAuth(t), servertest.MemcachedSASL(t)} {
		u, err := url.Parse(base)
		require.NoError(t, err)
		t.Run(u.Scheme, func(t *testing.T) {
			user := u.User.Username()
			const wrong = "not-the-password"
			bad := *u
			bad.User = url.UserPassword(user, wrong)
			bad.RawQuery = "prefix=" + memcachedPrefix(t)
			s, err := stores.Open(t.Context(), bad.String())
			require.NoError(t, err, "Open does not contact the server")
			defer s.Close()

			err = stores.Ping(t.Context(), s)
			require.ErrorIs(t, err, stores.ErrAuth, "Ping with bad credentials")
			assert.Contains(t, err.Error(), strconv.Quote(user), "the error names the user")
			assert.NotContains(t, err.Error(), wrong, "the error shows the password")
			for range 3 { // past the breaker's threshold
				_, err = s.Get(t.Context(), "k")
				require.ErrorIs(t, err, stores.ErrAuth, "Get with bad credentials")
				assert.NotErrorIs(t, err, stores.ErrNotFound, "bad credentials must not look like a miss")
				assert.NotContains(t, err.Error(), wrong)
			}
			require.ErrorIs(t, s.Set(t.Context(), "k", []byte("v"), 0), stores.ErrAuth, "Set with bad credentials")
			_, err = stores.Incr(t.Context(), s, "n", 1)
			require.ErrorIs(t, err, stores.ErrAuth, "Incr with bad credentials")
			_, err = stores.GetMany(t.Context(), s, []string{"a", "b"})
			require.ErrorIs(t, err, stores.ErrAuth, "GetMany with bad credentials")
		})
	}
}

// TestMemcachedNoCredentialsOnAuthServer checks that a store without
// credentials fails clearly on servers that require them.
func TestMemcachedNoCredentialsOnAuthServer(t *testing.T) {
	for _, base := range []string{servertest.MemcachedAuth(t), servertest.MemcachedSASL(t)} {
		u, err := url.Parse(base)
		require.NoError(t, err)
		t.Run(u.Scheme, func(t *testing.T) {
			protocol := stores.MemcachedASCII
			if u.Scheme == "saslmemcached" {
				protocol = stores.MemcachedBinary
			}
			s := newMemcached(t, stores.MemcachedConfig{Servers: []string{u.Host}, Protocol: protocol})
			_, err := s.Get(t.Context(), "k")
			require.Error(t, err)
			assert.NotErrorIs(t, err, stores.ErrNotFound)
			if protocol == stores.MemcachedBinary {
				assert.ErrorIs(t, err, stores.ErrAuth)
				assert.ErrorContains(t, err, "no Username is configured")
			}
		})
	}
}

// TestMemcachedCredentialsNotStored checks that the ASCII authentication
// command leaves nothing readable on a server that does not check
// credentials.
func TestMemcachedCredentialsNotStored(t *testing.T) {
	s := newMemcached(t, stores.MemcachedConfig{Username: "someone", Password: "secret"})
	require.NoError(t, s.Set(t.Context(), "k", []byte("v"), 0), "credentials on a server without authentication")
	_, err := rawMemcached(t).Get("echocache-auth")
	require.ErrorIs(t, err, memcache.ErrCacheMiss, "the credentials were stored on the server")
}

// TestMemcachedHostileKeys checks that keys memcached cannot take are
// hashed, and that no key collides with another key's hash, on both
// protocols.
func TestMemcachedHostileKeys(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			s := newMemcached(t, stores.MemcachedConfig{Protocol: protocol})
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
				"#c0123456789abcdef0123456789abcdef:0", // spelled like a chunk's key
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
		})
	}
}

// TestMemcachedClearIsNamespaced checks that Clear leaves keys written
// directly under other prefixes, and keys of other stores on the same
// server, untouched.
func TestMemcachedClearIsNamespaced(t *testing.T) {
	ctx := t.Context()
	raw := rawMemcached(t)
	prefix := memcachedPrefix(t)
	s := newMemcached(t, stores.MemcachedConfig{Prefix: prefix})
	other := newMemcached(t, stores.MemcachedConfig{})

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

// TestMemcachedGenerationAcrossStores plays two processes on one namespace
// of a pool: a Clear by one is seen by the other's next read and exact
// write, on every server.
func TestMemcachedGenerationAcrossStores(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			pool := servertest.MemcachedPool(t)
			prefix := memcachedPrefix(t)
			a := newMemcached(t, stores.MemcachedConfig{Servers: pool, Prefix: prefix, Protocol: protocol})
			b := newMemcached(t, stores.MemcachedConfig{Servers: pool, Prefix: prefix, Protocol: protocol})
			keys := manyKeys("k", 30)

			items := map[string][]byte{}
			for _, k := range keys {
				items[k] = []byte("v")
			}
			require.NoError(t, a.SetMany(ctx, items, 0))
			require.NoError(t, a.Set(ctx, "lock", []byte("a"), 0))
			_, err := a.Incr(ctx, "n", 5)
			require.NoError(t, err)
			got, err := b.GetMany(ctx, keys)
			require.NoError(t, err, "b reads a's entries")
			require.Len(t, got, len(keys))

			require.NoError(t, a.Clear(ctx))

			for _, k := range keys {
				_, err = b.Get(ctx, k)
				require.ErrorIs(t, err, stores.ErrNotFound, "b still reads %q, which a cleared", k)
			}
			got, err = b.GetMany(ctx, append(keys, "lock"))
			require.NoError(t, err)
			assert.Empty(t, got, "b's GetMany still reads entries a cleared")

			// b knows the new generations now; clear again behind its back
			// and check the exact writes, which must not use what b saw last.
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
		})
	}
}

// manyKeys returns n keys named prefix0, prefix1 …
func manyKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// genKeyOf returns the key of the generation a store with prefix keeps on
// the server named addr: prefix + "gen@" + the server name's xxhash64 in
// hex. The test finds it on the server instead of computing it.
func genKeysOf(t *testing.T, addr, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range servertest.MemcachedKeys(t, addr) {
		if strings.HasPrefix(k, prefix+"gen@") {
			out = append(out, k)
		}
	}
	return out
}

// TestMemcachedGenerationEvicted checks that a lost generation (an
// eviction) makes the server's entries misses rather than breaking the
// namespace, and that Clear works without one.
func TestMemcachedGenerationEvicted(t *testing.T) {
	ctx := t.Context()
	srv := servertest.StartMemcached(t)
	prefix := memcachedPrefix(t)
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{srv.Addr()}, Prefix: prefix})
	raw := rawMemcached(t, srv.Addr())
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))
	gens := genKeysOf(t, srv.Addr(), prefix)
	require.Len(t, gens, 1, "one generation per server, under prefix+\"gen@\"")
	require.NoError(t, raw.Delete(gens[0]))

	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)
	require.NoError(t, s.Set(ctx, "k", []byte("v2"), 0))
	v, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v2", string(v))
	require.NoError(t, raw.Delete(gens[0]))
	require.NoError(t, s.Clear(ctx), "Clear without a generation")
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)

	// A generation that holds something else than a number is replaced.
	require.NoError(t, s.Set(ctx, "k", []byte("v3"), 0))
	require.NoError(t, raw.Set(&memcache.Item{Key: gens[0], Value: []byte("eggs")}))
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)
	require.NoError(t, s.Set(ctx, "k", []byte("v4"), 0))
	v, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v4", string(v))
}

// TestMemcachedLongTTL checks the 30-day rule: a longer TTL is sent as an
// absolute time (sent as relative seconds, memcached would read it as a
// date in 1970 and expire the entry at once).
func TestMemcachedLongTTL(t *testing.T) {
	ctx := t.Context()
	s := newMemcached(t, stores.MemcachedConfig{})
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
		_, err = s.Incr(ctx, "add"+key, -1)
		require.ErrorIs(t, err, stores.ErrNotInteger)
	}
}

// TestMemcachedIncrSignedRange checks the ends of the int64 range, which
// memcached's unsigned counters do not have.
func TestMemcachedIncrSignedRange(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			s := newMemcached(t, stores.MemcachedConfig{Protocol: protocol})

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
		})
	}
}

// metaTTL reads the remaining TTL of key on a plain memcached with the
// meta protocol ("mg <key> t": -1 for none), the server's own view.
func metaTTL(t *testing.T, addr, key string) int64 {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprintf(conn, "mg %s t\r\n", key)
	require.NoError(t, err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	f := strings.Fields(line)
	require.True(t, len(f) == 2 && f[0] == "HD" && strings.HasPrefix(f[1], "t"), "mg answer %q", line)
	n, err := strconv.ParseInt(f[1][1:], 10, 64)
	require.NoError(t, err)
	return n
}

// TestMemcachedIncrCarriesTTL checks that every Incr, native or
// compare-and-swap, leaves the counter the TTL it had left, not a fresh
// one and not none, on both protocols: the server's own view of the item,
// read with a meta get, says so.
func TestMemcachedIncrCarriesTTL(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			srv := servertest.StartMemcached(t)
			prefix := memcachedPrefix(t)
			s := newMemcached(t, stores.MemcachedConfig{Servers: []string{srv.Addr()}, Prefix: prefix, Protocol: protocol})
			dataKey := func(key string) string {
				for _, k := range servertest.MemcachedKeys(t, srv.Addr()) {
					if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, ":"+key) {
						return k
					}
				}
				t.Fatalf("no item for %q on the server", key)
				return ""
			}
			for _, tt := range []struct {
				start string
				delta int64
			}{{"10", -11}, {"-5", 1}, {"-5", -1}, {"3", -1}, {"3", 4}} {
				key := "hits" + tt.start + strconv.FormatInt(tt.delta, 10)
				require.NoError(t, s.Set(ctx, key, []byte(tt.start), time.Hour))
				_, err := s.Incr(ctx, key, tt.delta)
				require.NoError(t, err)
				assert.InDelta(t, 3600, metaTTL(t, srv.Addr(), dataKey(key)), 5, "TTL left after Incr(%s, %d)", tt.start, tt.delta)
			}
			// A counter without expiry keeps none.
			require.NoError(t, s.Set(ctx, "forever", []byte("1"), stores.NoExpiry))
			_, err := s.Incr(ctx, "forever", -2)
			require.NoError(t, err)
			assert.Equal(t, int64(-1), metaTTL(t, srv.Addr(), dataKey("forever")), "Incr gave an expiry to a counter without one")
		})
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
	big := make([]byte, s.MaxValueSize()+1)
	require.ErrorIs(t, s.Set(t.Context(), "k", big, 0), stores.ErrTooLarge)
	_, err = s.Add(t.Context(), "k", big, 0)
	require.ErrorIs(t, err, stores.ErrTooLarge)
	require.ErrorIs(t, s.SetMany(t.Context(), map[string][]byte{"a": nil, "b": big}, 0), stores.ErrTooLarge)
}

// TestMemcachedServerTooLarge checks that the server's own refusal of an
// item (a MaxItemSize set above the server's -I) is ErrTooLarge too, and
// leaves the key a miss, through Set and SetMany, for a value of one item
// and for a chunked one.
func TestMemcachedServerTooLarge(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			s := newMemcached(t, stores.MemcachedConfig{MaxItemSize: 4 << 20, Protocol: protocol})
			for _, size := range []int{2 << 20, 9 << 20} {
				require.NoError(t, s.Set(ctx, "k", []byte("old"), 0))
				err := s.Set(ctx, "k", make([]byte, size), 0)
				require.ErrorIs(t, err, stores.ErrTooLarge, "Set of %d bytes, over the server's 1 MiB items", size)
				_, err = s.Get(ctx, "k")
				require.ErrorIs(t, err, stores.ErrNotFound, "a SET the server refused left the previous value")

				require.NoError(t, s.Set(ctx, "m", []byte("old"), 0))
				err = s.SetMany(ctx, map[string][]byte{"m": make([]byte, size), "n": []byte("new")}, 0)
				require.ErrorIs(t, err, stores.ErrTooLarge)
				_, err = s.Get(ctx, "m")
				require.ErrorIs(t, err, stores.ErrNotFound, "a SetMany item the server refused left the previous value")
			}
			require.NoError(t, s.Set(ctx, "after", []byte("v"), 0), "the store works after a refused item")
			assert.False(t, s.Servers()[0].Down, "refusals do not count against the server")
		})
	}
}

// TestMemcachedWriteCutOnNetwork checks that a Set whose connection is cut
// half-way through the value (a real loopback proxy between the store and
// memcached) leaves the key a miss, not its previous value, through Set and
// SetMany.
func TestMemcachedWriteCutOnNetwork(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			ctx := t.Context()
			p := faultproxy.Start(t, servertest.Memcached(t))
			s := newMemcached(t, stores.MemcachedConfig{Servers: []string{p.Addr()}, MaxIdleConns: 1, Protocol: protocol})
			require.NoError(t, s.Set(ctx, "k", []byte("old"), 0))
			require.NoError(t, s.Set(ctx, "m", []byte("old"), 0))
			p.CutAfter(64 << 10)

			require.Error(t, s.Set(ctx, "k", make([]byte, 256<<10), 0), "a Set cut on the network")
			p.CutAfter(0)
			_, err := s.Get(ctx, "k")
			require.ErrorIs(t, err, stores.ErrNotFound, "a Set cut on the network left the previous value")

			p.CutAfter(64 << 10)
			require.Error(t, s.SetMany(ctx, map[string][]byte{"m": make([]byte, 256<<10)}, 0), "a SetMany cut on the network")
			p.CutAfter(0)
			_, err = s.Get(ctx, "m")
			require.ErrorIs(t, err, stores.ErrNotFound, "a SetMany cut on the network left the previous value")
		})
	}
}

func TestMemcachedDeadServer(t *testing.T) {
	port, err := servertest.FreePort()
	require.NoError(t, err)
	for _, scheme := range []string{"memcached", "saslmemcached"} {
		t.Run(scheme, func(t *testing.T) {
			s, err := stores.Open(t.Context(), fmt.Sprintf("%s://u:p@127.0.0.1:%d?prefix=dead:", scheme, port))
			require.NoError(t, err)
			defer s.Close()

			start := time.Now()
			_, err = s.Get(context.Background(), "k")
			require.Error(t, err)
			assert.NotErrorIs(t, err, stores.ErrNotFound, "a dead server is not a miss")
			assert.NotErrorIs(t, err, stores.ErrNodeDown, "the only server is down: a plain error")
			require.Error(t, s.Set(context.Background(), "k", []byte("v"), 0))
			_, err = stores.Incr(context.Background(), s, "n", 1)
			require.Error(t, err)
			require.Error(t, s.Clear(context.Background()))
			require.Error(t, stores.Ping(context.Background(), s))
			assert.Less(t, time.Since(start), 3*time.Second, "calls to a dead server took too long")
		})
	}
}

// TestMemcachedSameServerTwice spreads keys over two names of one server:
// two "servers" that see each other's writes, each with its own
// generation.
func TestMemcachedSameServerTwice(t *testing.T) {
	addr := servertest.Memcached(t)
	_, port, _ := strings.Cut(addr, ":")
	s, err := stores.Open(t.Context(), "memcached://"+addr+",localhost:"+port+"?prefix="+memcachedPrefix(t))
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	items := map[string][]byte{}
	keys := manyKeys("k", 50)
	for _, k := range keys {
		items[k] = []byte(k)
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
	one := []string{"127.0.0.1:1"}
	tests := []struct {
		name string
		cfg  stores.MemcachedConfig
		want string
	}{
		{"nok, no servers", stores.MemcachedConfig{}, "no servers"},
		{"nok, server twice", stores.MemcachedConfig{Servers: []string{"127.0.0.1:1", "127.0.0.1:1"}}, "listed twice"},
		{"nok, prefix with a space", stores.MemcachedConfig{Servers: one, Prefix: "a b:"}, "prefix"},
		{"nok, prefix too long", stores.MemcachedConfig{Servers: one, Prefix: strings.Repeat("p", 129)}, "prefix"},
		{"nok, password without user", stores.MemcachedConfig{Servers: one, Password: "x"}, "username"},
		{"nok, user without password", stores.MemcachedConfig{Servers: one, Username: "app"}, `username "app" has no password`},
		{"nok, user with a space (ASCII)", stores.MemcachedConfig{Servers: one, Username: "a b", Password: "x"}, "space"},
		{"nok, NUL in password (SASL)", stores.MemcachedConfig{Servers: one, Protocol: stores.MemcachedBinary, Username: "a", Password: "x\x00"}, "NUL"},
		{"nok, unknown protocol", stores.MemcachedConfig{Servers: one, Protocol: "meta"}, "Protocol"},
		{"nok, tiny MaxItemSize", stores.MemcachedConfig{Servers: one, MaxItemSize: 100}, "MaxItemSize"},
		{"nok, MaxValueSize over 1024 items", stores.MemcachedConfig{Servers: one, MaxValueSize: 2 << 30}, "1024 chunks"},
		{"nok, negative DefaultTTL", stores.MemcachedConfig{Servers: one, DefaultTTL: -1}, "DefaultTTL"},
		{"nok, negative MaxValueSize", stores.MemcachedConfig{Servers: one, MaxValueSize: -1}, "MaxValueSize"},
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
		{"nok, server twice", "memcached://127.0.0.1,127.0.0.1:11211", "listed twice"},
		{"nok, path", "memcached://127.0.0.1:11211/db", `"/db"`},
		{"nok, unknown parameter", "memcached://127.0.0.1:11211?db=1", `"db"`},
		{"nok, empty prefix", "memcached://127.0.0.1:11211?prefix=", "prefix"},
		{"nok, prefix with a space", "memcached://127.0.0.1:11211?prefix=a%20b", "prefix"},
		{"nok, bad max_item_size", "memcached://127.0.0.1:11211?max_item_size=big", "max_item_size"},
		{"nok, bad max_value_size", "memcached://127.0.0.1:11211?max_value_size=big", "max_value_size"},
		{"nok, max_value_size over 1024 items", "memcached://127.0.0.1:11211?max_value_size=2GiB", "1024 chunks"},
		{"nok, bad timeout", "memcached://127.0.0.1:11211?timeout=fast", "timeout"},
		{"nok, bad max_idle_conns", "memcached://127.0.0.1:11211?max_idle_conns=-1", "max_idle_conns"},
		{"nok, bad default_ttl", "memcached://127.0.0.1:11211?default_ttl=1x", "default_ttl"},
		{"nok, bad protocol", "memcached://127.0.0.1:11211?protocol=meta", "protocol"},
		{"nok, password without user", "memcached://:secret@127.0.0.1:11211", "username"},
		{"nok, -Y credentials over binary", "memcached://u:secret@127.0.0.1:11211?protocol=binary", "saslmemcached://"},
		{"nok, saslmemcached without credentials", "saslmemcached://127.0.0.1:11211", "needs user:password"},
		{"nok, saslmemcached with a protocol", "saslmemcached://u:secret@127.0.0.1:11211?protocol=ascii", `"protocol"`},
		{"nok, saslmemcached no host", "saslmemcached://u:secret@", "no server"},
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
		"memcached://127.0.0.1:11211,127.0.0.1:11212?prefix=app:&default_ttl=5m&timeout=1s&max_item_size=2MiB&max_value_size=8MiB&max_idle_conns=4",
		"memcached://127.0.0.1?protocol=ascii",
		"memcached://127.0.0.1?protocol=binary",
		"memcached://user:pass@127.0.0.1:11211",
		"memcached://user:pass@127.0.0.1:11211?protocol=ascii",
		"memcached://[::1]:11211",
		"saslmemcached://user:pass@127.0.0.1:11211,127.0.0.1:11212?prefix=app:",
		"SASLMemcached://user:pass@127.0.0.1",
	} {
		t.Run("ok, "+ok, func(t *testing.T) {
			s, err := stores.Open(t.Context(), ok)
			require.NoError(t, err, "Open(%q)", ok)
			require.NoError(t, s.Close())
		})
	}
}

// TestMemcachedMaxValueSizeFromURL checks max_value_size and that
// max_item_size keeps its meaning: the item size, above which values are
// chunked, not the largest value.
func TestMemcachedMaxValueSizeFromURL(t *testing.T) {
	base := "memcached://" + servertest.Memcached(t) + "?prefix=" + memcachedPrefix(t)
	s, err := stores.Open(t.Context(), base+"&max_item_size=64KiB")
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, 32*(64<<10-512), s.(*stores.Memcached).MaxValueSize(), "32 items of 64 KiB less 512 bytes")
	require.NoError(t, s.Set(t.Context(), "k", make([]byte, 100<<10), 0), "a value of two items")

	s2, err := stores.Open(t.Context(), base+"&max_value_size=64KiB")
	require.NoError(t, err)
	defer s2.Close()
	require.ErrorIs(t, s2.Set(t.Context(), "k", make([]byte, 64<<10+1), 0), stores.ErrTooLarge)
	require.NoError(t, s2.Set(t.Context(), "k", make([]byte, 64<<10), 0))
}

func ExampleNewMemcached() {
	store, err := stores.NewMemcached(stores.MemcachedConfig{
		Servers:  []string{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"},
		Protocol: stores.MemcachedBinary,
		Username: "app", // SASL PLAIN, for memcached -S
		Password: "secret",
		Prefix:   "myapp:",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println(store.MaxValueSize())
	// Output: 33538048
}

// TestMemcachedHungServer checks that Timeout bounds a call to a server
// that accepts connections but never answers, with and without
// authentication (which waits for the server's answer when dialing), on
// both protocols.
func TestMemcachedHungServer(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		for _, user := range []string{"", "someone"} {
			pass := ""
			if user != "" {
				pass = "pw"
			}
			s := newMemcached(t, stores.MemcachedConfig{Servers: []string{silentServer(t)}, Timeout: 200 * time.Millisecond, Username: user, Password: pass, Protocol: protocol})
			start := time.Now()
			_, err := s.Get(context.Background(), "k")
			require.Error(t, err)
			assert.NotErrorIs(t, err, stores.ErrNotFound)
			assert.Less(t, time.Since(start), 2*time.Second, "Get from a hung server (%s, user %q) took too long", protocol, user)
		}
	}
}

// TestMemcachedASCIIAbandonedRead checks that reads over the ASCII protocol
// that their callers abandon (the client went away, under concurrent load)
// leave the round trips going on in the background key names of their
// own: gomemcache takes no context, so such a round trip still reads the
// names after the read has returned, and again when it finds its
// connection reset, while the store reuses a read's names for the next
// read. Under -race, names shared with the background are a data race.
func TestMemcachedASCIIAbandonedRead(t *testing.T) {
	p := faultproxy.Start(t, servertest.Memcached(t))
	s := newMemcached(t, stores.MemcachedConfig{Servers: []string{p.Addr()}, Protocol: stores.MemcachedASCII, Timeout: 5 * time.Second})
	require.NoError(t, s.Set(t.Context(), "k", []byte("v"), 0))
	p.Stall()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// The client goes away while its read waits on the stalled server.
			timer := time.AfterFunc(20*time.Millisecond, cancel)
			defer timer.Stop()
			_, err := s.Get(ctx, "k")
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
	wg.Wait()
	p.Drop() // the abandoned round trips find their connections reset and run once more
	p.Pass()
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			v, err := s.Get(ctx, "k")
			if assert.NoError(t, err) {
				assert.Equal(t, "v", string(v))
			}
		})
	}
	wg.Wait()
}

// rawBinary returns an mcbin client on addr, for items the ASCII protocol
// cannot write (a manifest's flags are fine; this is for symmetry with the
// store's own transport).
func rawBinary(t *testing.T, addr string) *mcbin.Client {
	t.Helper()
	c, err := mcbin.New(mcbin.Config{Addr: addr, MaxBody: 8 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

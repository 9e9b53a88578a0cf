package stores_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// rawRedis returns a plain client on the test server, for planting and
// inspecting keys behind the store's back.
func rawRedis(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(servertest.Redis(t))
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// openRedisURL opens a redis store from the test server's URL plus query.
func openRedisURL(t testing.TB, query string) stores.Store {
	t.Helper()
	s, err := stores.Open(context.Background(), servertest.Redis(t)+"?"+query)
	require.NoError(t, err)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestRedisConformance runs the suite on redis:// with max_value_size=8MiB:
// above the suite's 5 MiB value, which is stored whole, and a limit the
// refused writes check.
func TestRedisConformance(t *testing.T) {
	raw := rawRedis(t)
	storetest.Run(t, func(t *testing.T) stores.Store {
		return openRedisURL(t, "max_value_size=8MiB&prefix="+url.QueryEscape(storetest.Namespace(t)))
	}, conformanceOptions{
		MaxValueSize: 8 << 20,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
			return openRedisURL(t, "max_value_size=8MiB&prefix="+url.QueryEscape(storetest.Namespace(t))+"&default_ttl="+def.String())
		},
	}.plantIn(raw))
}

// conformanceOptions are the storetest options of a redis store; plantIn
// adds Plant and PlantedExists on raw, a client of the same servers, under
// a namespace of its own.
type conformanceOptions storetest.Options

func (o conformanceOptions) plantIn(raw redis.Cmdable) storetest.Options {
	other := "other:" + randomHex(6) + ":"
	o.Plant = func(t *testing.T, key string) {
		require.NoError(t, raw.Set(t.Context(), other+key, "planted", time.Hour).Err())
	}
	o.PlantedExists = func(t *testing.T, key string) bool {
		n, err := raw.Exists(t.Context(), other+key).Result()
		require.NoError(t, err)
		return n == 1
	}
	return storetest.Options(o)
}

// TestRedisConformanceSharedClient runs the suite on stores that share one
// client, the way an application hands its own pool in, with a 1 MiB
// MaxValueSize, so that the suite's refused writes run on redis too.
func TestRedisConformanceSharedClient(t *testing.T) {
	raw := rawRedis(t)
	storetest.Run(t, func(t *testing.T) stores.Store {
		s, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: storetest.Namespace(t), MaxValueSize: 1 << 20})
		require.NoError(t, err)
		return s
	}, storetest.Options{MaxValueSize: 1 << 20})
}

// TestRedisClearEscapesPrefix checks that Clear matches its prefix
// literally: glob characters in it must not widen SCAN MATCH to keys of
// other namespaces.
func TestRedisClearEscapesPrefix(t *testing.T) {
	ctx := t.Context()
	raw := rawRedis(t)
	base := "glob" + randomHex(4)
	s, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: base + `[ab]*?\:`})
	require.NoError(t, err)
	require.NoError(t, s.Set(ctx, "mine", []byte("v"), stores.NoExpiry))

	// Each of these would match the prefix read as a glob pattern.
	planted := []string{base + "a:k", base + "bzz:k", base + `bq\:k`, base + "axy:" + base + "[ab]*?:k"}
	for _, k := range planted {
		require.NoError(t, raw.Set(ctx, k, "planted", time.Hour).Err())
	}
	t.Cleanup(func() { raw.Del(context.Background(), planted...) })

	require.NoError(t, s.Clear(ctx))
	_, err = s.Get(ctx, "mine")
	require.ErrorIs(t, err, stores.ErrNotFound, "Clear left the store's own key")
	for _, k := range planted {
		n, err := raw.Exists(ctx, k).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "Clear removed %q, which is outside its namespace", k)
	}
}

// TestRedisClearManyKeys crosses Clear's batch size.
func TestRedisClearManyKeys(t *testing.T) {
	ctx := t.Context()
	s := openRedisURL(t, "prefix="+url.QueryEscape(storetest.Namespace(t)))
	defer s.Close()
	items := make(map[string][]byte, 1500)
	for i := range 1500 {
		items[fmt.Sprint("k", i)] = []byte("v")
	}
	require.NoError(t, stores.SetMany(ctx, s, items, time.Hour))
	require.NoError(t, s.Clear(ctx))
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	got, err := stores.GetMany(ctx, s, keys)
	require.NoError(t, err)
	assert.Empty(t, got, "keys left after Clear")
}

func TestRedisSharedClientNotClosed(t *testing.T) {
	ctx := t.Context()
	raw := rawRedis(t)
	s, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: storetest.Namespace(t)})
	require.NoError(t, err)
	require.NoError(t, s.Set(ctx, "k", []byte("v"), stores.DefaultTTL))
	require.NoError(t, s.Close())

	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrClosed, "Get on a closed store")
	require.NoError(t, raw.Ping(ctx).Err(), "closing the store closed the client it was handed")
}

func TestRedisConfigErrors(t *testing.T) {
	raw := rawRedis(t)
	tests := []struct {
		name string
		cfg  stores.RedisConfig
		want string
	}{
		{"nok, Client and Addr", stores.RedisConfig{Client: raw, Addr: "127.0.0.1:1"}, "not several"},
		{"nok, Client and Options", stores.RedisConfig{Client: raw, Options: &redis.UniversalOptions{}}, "not several"},
		{"nok, Options.Addrs and Addr", stores.RedisConfig{Addr: "a:1", Options: &redis.UniversalOptions{Addrs: []string{"b:1"}}}, "not both"},
		{"nok, negative DefaultTTL", stores.RedisConfig{DefaultTTL: -time.Second}, "DefaultTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stores.NewRedis(tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestRedisDefaultPrefix checks that a store without a prefix writes under
// DefaultPrefix.
func TestRedisDefaultPrefix(t *testing.T) {
	ctx := t.Context()
	raw := rawRedis(t)
	s, err := stores.NewRedis(stores.RedisConfig{Client: raw})
	require.NoError(t, err)
	key := "default-prefix-" + randomHex(4)
	require.NoError(t, s.Set(ctx, key, []byte("v"), time.Minute))
	t.Cleanup(func() { raw.Del(context.Background(), stores.DefaultPrefix+key) })
	got, err := raw.Get(ctx, stores.DefaultPrefix+key).Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got)
}

// TestRedisTTLRoundsUp checks that a TTL finer than redis's milliseconds
// still expires (it is not sent as 0, "no expiry") and is not cut short.
func TestRedisTTLRoundsUp(t *testing.T) {
	ctx := t.Context()
	raw := rawRedis(t)
	prefix := storetest.Namespace(t)
	s, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: prefix})
	require.NoError(t, err)
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 1500*time.Millisecond+time.Microsecond))
	ttl, err := raw.PTTL(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 1490*time.Millisecond, "PTTL after Set with 1.500001s")
	assert.LessOrEqual(t, ttl, 1501*time.Millisecond, "PTTL after Set with 1.500001s")

	ok, err := s.Add(ctx, "a", []byte("v"), 200*time.Microsecond)
	require.NoError(t, err)
	require.True(t, ok)
	ttl, err = raw.PTTL(ctx, prefix+"a").Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, ttl, time.Millisecond, "PTTL after Add with 200µs: want an expiry, not none (-1)")
	assert.NotEqual(t, time.Duration(-1), ttl)
}

// TestRedisDeadServer checks that a closed port gives an error quickly, not
// a miss and not a hang.
func TestRedisDeadServer(t *testing.T) {
	port, err := servertest.FreePort()
	require.NoError(t, err)
	s, err := stores.Open(t.Context(), fmt.Sprintf("redis://127.0.0.1:%d/0?prefix=dead:", port))
	require.NoError(t, err)
	defer s.Close()

	start := time.Now()
	_, err = s.Get(context.Background(), "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound, "a dead server is not a miss")
	require.Error(t, s.Set(context.Background(), "k", []byte("v"), 0))
	require.Error(t, stores.Ping(context.Background(), s))
	assert.Less(t, time.Since(start), 3*time.Second, "calls to a dead server took too long")
}

func TestRedisURLDatabaseAndTTL(t *testing.T) {
	ctx := t.Context()
	base := strings.TrimSuffix(servertest.Redis(t), "/0")
	prefix := storetest.Namespace(t)
	s, err := stores.Open(ctx, base+"/5?prefix="+url.QueryEscape(prefix)+"&default_ttl=90s&dial_timeout=2s&read_timeout=1s&write_timeout=1s&pool_size=4")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Set(ctx, "k", []byte("v"), stores.DefaultTTL))

	opts, err := redis.ParseURL(base + "/5")
	require.NoError(t, err)
	db5 := redis.NewClient(opts)
	defer db5.Close()
	got, err := db5.Get(ctx, prefix+"k").Result()
	require.NoError(t, err, "the key is not in database 5")
	assert.Equal(t, "v", got)
	ttl, err := db5.TTL(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.InDelta(t, 90, ttl.Seconds(), 2, "default_ttl=90s")
	db5.Del(ctx, prefix+"k")
}

// TestRedisURLCredentials checks that the URL's userinfo reaches the server:
// the test server has no such user, so it refuses the connection.
func TestRedisURLCredentials(t *testing.T) {
	u, err := url.Parse(servertest.Redis(t))
	require.NoError(t, err)
	u.User = url.UserPassword("nobody", "wrong-secret")
	u.RawQuery = "prefix=creds:"
	s, err := stores.Open(t.Context(), u.String())
	require.NoError(t, err)
	defer s.Close()
	err = stores.Ping(t.Context(), s)
	require.Error(t, err, "Ping with credentials the server does not know")
	assert.NotContains(t, err.Error(), "wrong-secret", "the error shows the password")
}

// TestRedissUsesTLS checks that rediss://, rediss+cluster:// and
// rediss+sentinel:// open TLS connections: the first byte a server sees is
// a TLS handshake record (0x16).
func TestRedissUsesTLS(t *testing.T) {
	for _, form := range []string{"rediss://%s/0?prefix=tls:", "rediss+cluster://%s/?prefix=tls:", "rediss+sentinel://%s/mymaster?prefix=tls:"} {
		t.Run(form, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer l.Close()
			first := make(chan byte, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				b := make([]byte, 1)
				if _, err := c.Read(b); err == nil {
					first <- b[0]
				}
			}()
			s, err := stores.Open(t.Context(), fmt.Sprintf(form, l.Addr().String())+"&dial_timeout=500ms&read_timeout=500ms")
			require.NoError(t, err)
			defer s.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			require.Error(t, stores.Ping(ctx, s), "Ping of a listener that never answers the handshake")
			select {
			case b := <-first:
				assert.Equal(t, byte(0x16), b, "first byte sent: want a TLS handshake record")
			case <-time.After(2 * time.Second):
				t.Fatal("never connected")
			}
		})
	}
}

func TestRedisURLErrors(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"nok, unknown parameter", "redis://127.0.0.1:6379/0?prefx=a:", `"prefx"`},
		{"nok, empty prefix", "redis://127.0.0.1:6379/0?prefix=", "prefix"},
		{"nok, bad default_ttl", "redis://127.0.0.1:6379/0?default_ttl=soon", "default_ttl"},
		{"nok, negative default_ttl", "redis://127.0.0.1:6379/0?default_ttl=-5s", "default_ttl"},
		{"nok, repeated parameter", "redis://127.0.0.1:6379/0?prefix=a:&prefix=b:", "prefix"},
		{"nok, bad pool_size", "redis://127.0.0.1:6379/0?pool_size=many", "pool_size"},
		{"nok, bad database", "redis://127.0.0.1:6379/zero", `"/zero"`},
		{"nok, nested path", "redis://127.0.0.1:6379/0/1", `"/0/1"`},
		{"nok, bad port", "redis://127.0.0.1:99999/0", "99999"},
		{"nok, rediss unknown parameter", "rediss://127.0.0.1:6379/0?tls=off", `"tls"`},
		{"nok, opaque", "redis:127.0.0.1:6379", "opaque"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.Open(t.Context(), tt.url)
			require.Error(t, err, "Open(%q)", tt.url)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.want, "Open(%q): the error must name the problem", tt.url)
		})
	}
	for _, ok := range []string{
		"redis://127.0.0.1:6379",
		"redis://127.0.0.1",
		"redis://",
		"redis://user:pass@127.0.0.1:6379/3?prefix=app:&default_ttl=5m",
		"rediss://cache.example.com:6380/0?prefix=app:",
		"REDIS://127.0.0.1:6379/0",
	} {
		t.Run("ok, "+ok, func(t *testing.T) {
			s, err := stores.Open(t.Context(), ok)
			require.NoError(t, err, "Open(%q)", ok)
			require.NoError(t, s.Close())
		})
	}
}

func TestRedisPing(t *testing.T) {
	s := openRedisURL(t, "prefix=ping:")
	defer s.Close()
	require.NoError(t, stores.Ping(t.Context(), s))
	require.NoError(t, s.Close())
	require.ErrorIs(t, stores.Ping(t.Context(), s), stores.ErrClosed)
}

func BenchmarkRedisGet(b *testing.B) {
	ctx := context.Background()
	s := openRedisURL(b, "prefix=bench:"+randomHex(4)+":")
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

func BenchmarkRedisSet(b *testing.B) {
	ctx := context.Background()
	s := openRedisURL(b, "prefix=bench:"+randomHex(4)+":")
	defer func() { _ = s.Clear(ctx); s.Close() }()
	value := []byte(strings.Repeat("v", 512))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", value, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleNewRedis() {
	// Share the application's pool; the store does not close it.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, err := stores.NewRedis(stores.RedisConfig{Client: client, Prefix: "myapp:", DefaultTTL: 5 * time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.Set(ctx, "greeting", []byte("hello"), stores.DefaultTTL); err != nil {
		fmt.Println("cache unavailable:", err)
		return
	}
	v, err := store.Get(ctx, "greeting")
	if errors.Is(err, stores.ErrNotFound) {
		fmt.Println("miss")
		return
	}
	fmt.Println(string(v), err)
}

// silentServer accepts connections and never answers, like a hung server.
// It returns its address; connections are closed when the test ends.
func silentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				<-done
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); close(done) })
	return l.Addr().String()
}

// TestRedisHungServer checks that the default timeouts bound a call to a
// server that accepts connections but never answers.
func TestRedisHungServer(t *testing.T) {
	s, err := stores.NewRedis(stores.RedisConfig{Addr: silentServer(t), Prefix: "hung:"})
	require.NoError(t, err)
	defer s.Close()
	start := time.Now()
	_, err = s.Get(context.Background(), "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound)
	assert.Less(t, time.Since(start), 3*time.Second, "Get from a hung server took too long")

	// A caller's deadline shorter than the read timeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 450*time.Millisecond, "the context deadline did not bound Get")
}

// privateRedis starts a redis-server of the test's own with extra config
// arguments (limits the shared server must not have), and returns a client
// on it. The server is killed when the test ends.
func privateRedis(t *testing.T, args ...string) *redis.Client {
	t.Helper()
	srv := servertest.StartRedis(t, args...)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisServerRefusalRemovesOldValue checks that a SET the server
// refuses leaves the key a miss, not its previous value: under maxmemory
// with noeviction ("OOM command not allowed"), and for a value above the
// server's proto-max-bulk-len (the server drops the connection), through
// Set and SetMany.
func TestRedisServerRefusalRemovesOldValue(t *testing.T) {
	ctx := t.Context()
	t.Run("OOM", func(t *testing.T) {
		c := privateRedis(t, "--maxmemory-policy", "noeviction")
		s, err := stores.NewRedis(stores.RedisConfig{Client: c, Prefix: "oom:"})
		require.NoError(t, err)
		require.NoError(t, s.Set(ctx, "k", []byte("old"), stores.NoExpiry))
		require.NoError(t, s.Set(ctx, "m", []byte("old"), stores.NoExpiry))
		// Memory in use above maxmemory: every write is refused, deletes
		// are not.
		require.NoError(t, s.Set(ctx, "filler", make([]byte, 4<<20), stores.NoExpiry))
		require.NoError(t, c.ConfigSet(ctx, "maxmemory", "2mb").Err())

		err = s.Set(ctx, "k", []byte("new"), stores.NoExpiry)
		require.ErrorContains(t, err, "OOM", "Set under maxmemory")
		_, err = s.Get(ctx, "k")
		require.ErrorIs(t, err, stores.ErrNotFound, "a Set refused by the server left the previous value")
		require.Error(t, s.SetMany(ctx, map[string][]byte{"m": []byte("new")}, stores.NoExpiry), "SetMany under OOM")
		_, err = s.Get(ctx, "m")
		require.ErrorIs(t, err, stores.ErrNotFound, "a SetMany refused by the server left the previous value")
	})
	t.Run("proto-max-bulk-len", func(t *testing.T) {
		c := privateRedis(t, "--proto-max-bulk-len", "1mb")
		s, err := stores.NewRedis(stores.RedisConfig{Client: c, Prefix: "bulk:", MaxValueSize: 8 << 20})
		require.NoError(t, err)
		require.NoError(t, s.Set(ctx, "k", []byte("old"), stores.NoExpiry))
		require.Error(t, s.Set(ctx, "k", make([]byte, 2<<20), stores.NoExpiry), "Set above proto-max-bulk-len")
		_, err = s.Get(ctx, "k")
		require.ErrorIs(t, err, stores.ErrNotFound, "a Set refused by the server left the previous value")
	})
}

// TestRedisWriteCutOnNetwork checks that a Set whose connection is cut
// half-way through the value (a real loopback proxy between the store and
// redis) leaves the key a miss, not its previous value.
func TestRedisWriteCutOnNetwork(t *testing.T) {
	ctx := t.Context()
	u, err := url.Parse(servertest.Redis(t))
	require.NoError(t, err)
	p := faultproxy.Start(t, u.Host)
	s, err := stores.NewRedis(stores.RedisConfig{Addr: p.Addr(), Prefix: storetest.Namespace(t)})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Set(ctx, "k", []byte("old"), stores.NoExpiry))
	require.NoError(t, s.Set(ctx, "m", []byte("old"), stores.NoExpiry))
	p.CutAfter(64 << 10)

	require.Error(t, s.Set(ctx, "k", make([]byte, 256<<10), stores.NoExpiry), "a Set cut on the network")
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound, "a Set cut on the network left the previous value")
	require.Error(t, s.SetMany(ctx, map[string][]byte{"m": make([]byte, 256<<10)}, stores.NoExpiry), "a SetMany cut on the network")
	_, err = s.Get(ctx, "m")
	require.ErrorIs(t, err, stores.ErrNotFound, "a SetMany cut on the network left the previous value")
}

func TestRedisMaxValueSizeFromURL(t *testing.T) {
	s := openRedisURL(t, "prefix="+url.QueryEscape(storetest.Namespace(t))+"&max_value_size=64KiB")
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.Set(ctx, "k", []byte("old"), 0))
	require.ErrorIs(t, s.Set(ctx, "k", make([]byte, 64<<10+1), 0), stores.ErrTooLarge)
	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound, "a refused Set left the previous value")
	require.NoError(t, s.Set(ctx, "k", make([]byte, 64<<10), 0))
}

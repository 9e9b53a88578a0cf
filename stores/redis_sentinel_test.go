package stores_test

import (
	"context"
	"errors"
	"fmt"
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

// sentinelURL returns a redis+sentinel URL on the sentinels at addrs for
// master, with query.
func sentinelURL(addrs []string, master, query string) string {
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + url.PathEscape(master) + "?" + query
}

// rawFailover returns a plain sentinel-backed client, for planting and
// inspecting keys behind the store's back.
func rawFailover(t testing.TB, addrs []string, master string) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisSentinelConformance runs the suite on redis+sentinel:// with
// max_value_size=1MiB, so that refused writes run on it too.
func TestRedisSentinelConformance(t *testing.T) {
	addrs, master := servertest.RedisSentinelAddrs(t)
	raw := rawFailover(t, addrs, master)
	open := func(t *testing.T, extra string) stores.Store {
		s, err := stores.Open(t.Context(), sentinelURL(addrs, master, "max_value_size=1MiB&prefix="+url.QueryEscape(storetest.Namespace(t))+extra))
		require.NoError(t, err)
		return s
	}
	storetest.Run(t, func(t *testing.T) stores.Store { return open(t, "") }, conformanceOptions{
		MaxValueSize: 1 << 20,
		OpenWithDefaultTTL: func(t *testing.T, def time.Duration) stores.Store {
			return open(t, "&default_ttl="+def.String())
		},
	}.plantIn(raw))
}

// TestRedisSentinelDatabase checks that the path's /MASTER/DB selects the
// database on the master.
func TestRedisSentinelDatabase(t *testing.T) {
	ctx := t.Context()
	addrs, master := servertest.RedisSentinelAddrs(t)
	prefix := storetest.Namespace(t)
	s := openURL(t, "redis+sentinel://"+strings.Join(addrs, ",")+"/"+master+"/4?prefix="+url.QueryEscape(prefix))
	require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Minute))
	db4 := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs, DB: 4})
	defer db4.Close()
	got, err := db4.Get(ctx, prefix+"k").Result()
	require.NoError(t, err, "the key is not in database 4")
	assert.Equal(t, "v", got)
	require.NoError(t, s.Clear(ctx))
}

// TestRedisSentinelStartWithSentinelDown checks that a store whose first
// sentinel address is a closed port starts and works, and that with no
// sentinel answering, calls fail fast with an error rather than a miss.
func TestRedisSentinelStartWithSentinelDown(t *testing.T) {
	ctx := t.Context()
	port, err := servertest.FreePort()
	require.NoError(t, err)
	addrs, master := servertest.RedisSentinelAddrs(t)
	addrs = append([]string{fmt.Sprintf("127.0.0.1:%d", port)}, addrs...)
	s := openURL(t, sentinelURL(addrs, master, "prefix="+url.QueryEscape(storetest.Namespace(t))))
	require.NoError(t, stores.Ping(ctx, s))
	require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Minute))
	v, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(v))
	require.NoError(t, s.Clear(ctx))

	dead := openURL(t, sentinelURL(addrs[:1], master, "prefix=dead:"))
	start := time.Now()
	_, err = dead.Get(ctx, "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound)
	assert.Less(t, time.Since(start), 3*time.Second)
}

// TestRedisSentinelCredentials checks that the URL's user:pass go to the
// master and sentinel_username/sentinel_password to the sentinels, each
// only where it belongs, and that no password appears in an error.
func TestRedisSentinelCredentials(t *testing.T) {
	ctx := t.Context()
	// A user of the servers' own; the sentinels know no user but the
	// default one, which has no password.
	const pass = "data-secret"
	set := servertest.StartRedisSentinel(t, "--user", "app", "on", ">"+pass, "~*", "&*", "+@all")
	prefix := storetest.Namespace(t)
	base := "redis+sentinel://" + strings.Join(set.Addrs(), ",") + "/" + set.Name
	withUser := func(userinfo string) string { return strings.Replace(base, "://", "://"+userinfo+"@", 1) }

	// The master gets the URL's user; the sentinels get no AUTH (they
	// would refuse user app).
	s := openURL(t, withUser("app:"+pass)+"?prefix="+url.QueryEscape(prefix))
	require.NoError(t, stores.Ping(ctx, s), "the master's user from the URL's userinfo")
	require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Minute))
	who, err := set.MasterAddr(ctx)
	require.NoError(t, err)
	admin := redis.NewClient(&redis.Options{Addr: who})
	defer admin.Close()
	got, err := admin.Get(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got)

	wrong := openURL(t, withUser("app:wrong-secret")+"?prefix=x:")
	err = stores.Ping(ctx, wrong)
	require.Error(t, err, "a wrong master password")
	assert.NotContains(t, err.Error(), "wrong-secret")

	// The sentinel credentials go to the sentinels, which know no such
	// user.
	sp := openURL(t, withUser("app:"+pass)+"?prefix=x:&sentinel_username=nobody&sentinel_password=sentinel-secret")
	err = stores.Ping(ctx, sp)
	require.Error(t, err, "sentinel_username and sentinel_password of a user the sentinels do not know")
	assert.NotContains(t, err.Error(), "sentinel-secret")
	assert.NotContains(t, err.Error(), pass)
}

// TestRedisSentinelFailover kills the master of a set of the test's own
// under concurrent load and checks that calls keep answering, fast, with
// errors (never a miss for a key that is there, never a hang) while no
// master is known, and that the store writes and reads on the new master
// within 5 s of the sentinels announcing it.
func TestRedisSentinelFailover(t *testing.T) {
	ctx := t.Context()
	set := servertest.StartRedisSentinel(t)
	prefix := storetest.Namespace(t)
	s := openURL(t, sentinelURL(set.Addrs(), set.Name, "prefix="+url.QueryEscape(prefix)))
	require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Hour))
	old, err := set.MasterAddr(ctx)
	require.NoError(t, err)
	require.NoError(t, waitReplicated(ctx, old))

	const timeout = 250 * time.Millisecond
	var (
		stop                 atomic.Bool
		calls, fails, slow   atomic.Int64
		wrongMiss            atomic.Int64
		lastOK, firstOKAfter atomic.Int64
		promotedAt           atomic.Int64
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				v, err := s.Get(cctx, "k")
				took := time.Since(t0)
				cancel()
				calls.Add(1)
				if took > 2*timeout {
					slow.Add(1)
				}
				switch {
				case err == nil:
					if string(v) == "v" {
						lastOK.Store(time.Now().UnixNano())
						if p := promotedAt.Load(); p != 0 {
							firstOKAfter.CompareAndSwap(0, time.Now().UnixNano())
						}
					}
				case errors.Is(err, stores.ErrNotFound):
					wrongMiss.Add(1)
				default:
					fails.Add(1)
				}
				time.Sleep(time.Millisecond) // about 1000 calls a second in all
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	set.Master.Kill()
	killed := time.Now()
	deadline := killed.Add(30 * time.Second)
	for {
		addr, err := set.MasterAddr(ctx)
		if err == nil && addr != old {
			promotedAt.Store(time.Now().UnixNano())
			break
		}
		require.True(t, time.Now().Before(deadline), "no new master announced within 30 s of the kill")
		time.Sleep(10 * time.Millisecond)
	}
	promoted := time.Unix(0, promotedAt.Load())
	for firstOKAfter.Load() == 0 {
		require.True(t, time.Since(promoted) < 5*time.Second, "no Get from the new master within 5 s of its announcement")
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("sentinel failover: promotion %v after the kill; first read from the new master %v after the promotion; %d calls, %d failed",
		promoted.Sub(killed).Round(time.Millisecond), time.Unix(0, firstOKAfter.Load()).Sub(promoted).Round(time.Millisecond), calls.Load(), fails.Load())
	assert.Zero(t, wrongMiss.Load(), "a key that is there read as a miss")
	assert.Zero(t, slow.Load(), "calls took more than twice their deadline")
	require.NoError(t, s.Set(ctx, "after", []byte("x"), time.Minute), "a write on the new master")
}

package stores_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
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

// clusterURL returns a redis+cluster URL on the nodes at addrs with query.
func clusterURL(addrs []string, query string) string {
	return "redis+cluster://" + strings.Join(addrs, ",") + "/?" + query
}

// rawCluster returns a plain cluster client on the nodes at addrs, for
// planting and inspecting keys behind the store's back.
func rawCluster(t testing.TB, addrs []string) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	return c
}

func openURL(t testing.TB, rawURL string) stores.Store {
	t.Helper()
	s, err := stores.Open(context.Background(), rawURL)
	require.NoError(t, err, "Open(%q)", rawURL)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRedisClusterConformance runs the suite on the shared cluster, with a
// 1 MiB MaxValueSize so that refused writes (and the UNLINKs that follow
// them, one per key across slots) run on it too.
func TestRedisClusterConformance(t *testing.T) {
	addrs := servertest.RedisClusterAddrs(t)
	raw := rawCluster(t, addrs)
	open := func(t *testing.T, extra string) stores.Store {
		s, err := stores.Open(t.Context(), clusterURL(addrs, "max_value_size=1MiB&prefix="+url.QueryEscape(storetest.Namespace(t))+extra))
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

// mastersHolding returns, per master address, how many keys of the
// namespace prefix it holds.
func mastersHolding(t *testing.T, raw *redis.ClusterClient, prefix string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	held := map[string]int{}
	err := raw.ForEachMaster(t.Context(), func(ctx context.Context, node *redis.Client) error {
		n := 0
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		mu.Lock()
		defer mu.Unlock()
		held[node.Options().Addr] = n
		return iter.Err()
	})
	require.NoError(t, err)
	return held
}

// TestRedisClusterManyKeysAcrossMasters checks that keys spread over every
// master (no hash tag puts them in one slot), and that GetMany, SetMany,
// DeleteMany and Clear work on keys of every slot at once, never with
// CROSSSLOT, Clear on every master.
func TestRedisClusterManyKeysAcrossMasters(t *testing.T) {
	ctx := t.Context()
	addrs := servertest.RedisClusterAddrs(t)
	raw := rawCluster(t, addrs)
	prefix := storetest.Namespace(t)
	s := openURL(t, clusterURL(addrs, "prefix="+url.QueryEscape(prefix)))
	other := openURL(t, clusterURL(addrs, "prefix="+url.QueryEscape("other:"+prefix)))

	items := map[string][]byte{}
	var keys []string
	for i := range 1500 { // more than Clear's batch of 500 on each master
		k := fmt.Sprint("k", i)
		items[k] = []byte(k)
		keys = append(keys, k)
	}
	require.NoError(t, stores.SetMany(ctx, s, items, time.Hour))
	require.NoError(t, stores.SetMany(ctx, other, map[string][]byte{"k1": []byte("other"), "k2": []byte("other"), "k3": []byte("other")}, time.Hour))

	held := mastersHolding(t, raw, prefix)
	require.Len(t, held, 3, "masters: %v", held)
	for addr, n := range held {
		assert.Greater(t, n, 300, "master %s holds %d of 1500 keys: the keys are not spread over the masters", addr, n)
	}

	got, err := stores.GetMany(ctx, s, keys)
	require.NoError(t, err, "GetMany of keys in every slot")
	assert.Equal(t, items, got)
	require.NoError(t, stores.DeleteMany(ctx, s, keys[:750]), "DeleteMany of keys in every slot")
	got, err = stores.GetMany(ctx, s, keys)
	require.NoError(t, err)
	assert.Len(t, got, 750)

	require.NoError(t, s.Clear(ctx))
	for addr, n := range mastersHolding(t, raw, prefix) {
		assert.Zero(t, n, "Clear left %d keys on master %s", n, addr)
	}
	got, err = stores.GetMany(ctx, other, []string{"k1", "k2", "k3"})
	require.NoError(t, err)
	assert.Len(t, got, 3, "Clear removed another namespace's keys")
}

// TestRedisClusterStartWithSeedDown checks that a store whose first seed
// address is a closed port starts and works: the slot map comes from the
// seeds that answer.
func TestRedisClusterStartWithSeedDown(t *testing.T) {
	ctx := t.Context()
	port, err := servertest.FreePort()
	require.NoError(t, err)
	addrs := append([]string{fmt.Sprintf("127.0.0.1:%d", port)}, servertest.RedisClusterAddrs(t)...)
	s := openURL(t, clusterURL(addrs, "prefix="+url.QueryEscape(storetest.Namespace(t))))
	require.NoError(t, stores.Ping(ctx, s))
	require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Minute))
	v, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(v))
	require.NoError(t, s.Clear(ctx))

	// Only the dead seed: an error, not a miss and not a hang.
	dead := openURL(t, clusterURL(addrs[:1], "prefix=dead:"))
	start := time.Now()
	_, err = dead.Get(ctx, "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound)
	assert.NotErrorIs(t, err, stores.ErrNodeDown, "no node answers: a plain error, for the breaker")
	assert.Less(t, time.Since(start), 3*time.Second)
}

// TestRedisClusterHashTagPrefix checks that a prefix holding a hash tag,
// which would put every key on one master, is refused on a cluster.
func TestRedisClusterHashTagPrefix(t *testing.T) {
	addrs := servertest.RedisClusterAddrs(t)
	_, err := stores.Open(t.Context(), clusterURL(addrs, "prefix="+url.QueryEscape("{app}:")))
	require.ErrorContains(t, err, "hash tag {app}")
	raw := rawCluster(t, addrs)
	_, err = stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: "x{y}"})
	require.ErrorContains(t, err, "hash tag {y}")
	for _, ok := range []string{"{}app:", "app}{", "app:{"} {
		s, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: ok})
		require.NoError(t, err, "prefix %q has no hash tag", ok)
		s.Close()
	}
}

// TestRedisClusterHandedInClient runs the many-key calls on a cluster
// client the application built, shared by two stores.
func TestRedisClusterHandedInClient(t *testing.T) {
	ctx := t.Context()
	raw := rawCluster(t, servertest.RedisClusterAddrs(t))
	prefix := storetest.Namespace(t)
	a, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: prefix})
	require.NoError(t, err)
	b, err := stores.NewRedis(stores.RedisConfig{Client: raw, Prefix: prefix})
	require.NoError(t, err)
	items := map[string][]byte{"x": []byte("1"), "y": []byte("2"), "z": []byte("3")}
	require.NoError(t, a.SetMany(ctx, items, time.Minute))
	got, err := b.GetMany(ctx, []string{"x", "y", "z", "w"})
	require.NoError(t, err)
	assert.Equal(t, items, got)
	require.NoError(t, stores.Ping(ctx, b))
	require.NoError(t, a.Clear(ctx))
	require.NoError(t, a.Close())
	require.NoError(t, raw.Ping(ctx).Err(), "closing the store closed the client it was handed")
}

// keysByMaster returns n keys held by each master of c (by address), for a
// store with prefix.
func keysByMaster(t *testing.T, c *servertest.RedisCluster, prefix string, n int) map[string][]string {
	t.Helper()
	raw := rawCluster(t, c.Addrs())
	out := map[string][]string{}
	for i := 0; len(out) < 3 || slices.ContainsFunc(mapValues(out), func(ks []string) bool { return len(ks) < n }); i++ {
		require.Less(t, i, 10000, "no %d keys on each master", n)
		k := fmt.Sprint("key", i)
		m, err := raw.MasterForKey(t.Context(), prefix+k)
		require.NoError(t, err)
		addr := m.Options().Addr
		if len(out[addr]) < n {
			out[addr] = append(out[addr], k)
		}
	}
	return out
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestRedisClusterMasterDown kills one master of a cluster of the test's
// own (cluster-require-full-coverage no) and checks, before the cluster
// promotes its replica: calls on the other masters' keys succeed; calls
// on its keys fail with a NodeError naming it (ErrNodeDown), fast; GetMany
// returns the other masters' values with a NodeError listing the dead
// master's keys, and SetMany and DeleteMany name them too. After the
// promotion, its keys are served again within 5 s. With every node down,
// the errors are plain ones (for the Cache's breaker).
func TestRedisClusterMasterDown(t *testing.T) {
	ctx := t.Context()
	c := servertest.StartRedisCluster(t, "--cluster-require-full-coverage", "no")
	prefix := storetest.Namespace(t)
	s := openURL(t, clusterURL(c.Addrs(), "prefix="+url.QueryEscape(prefix)))
	byMaster := keysByMaster(t, c, prefix, 3)
	var all []string
	items := map[string][]byte{}
	for _, ks := range byMaster {
		for _, k := range ks {
			all = append(all, k)
			items[k] = []byte("v-" + k)
		}
	}
	require.NoError(t, stores.SetMany(ctx, s, items, time.Hour))

	victimKey := all[0]
	victim, replicas, err := c.MasterOf(ctx, prefix+victimKey)
	require.NoError(t, err)
	require.Len(t, replicas, 1)
	dead := victim.Addr()
	deadKeys := byMaster[dead]
	require.Len(t, deadKeys, 3)
	// The replica has every key before the kill, and is paused until the
	// checks of the outage are done, so that it cannot be promoted
	// before them however slow the machine.
	require.NoError(t, waitReplicated(ctx, victim.Addr()))
	require.NoError(t, replicas[0].Pause())
	victim.Kill()

	// A healthy-key call keeps the store's "some master answers" fresh.
	healthy := func() {
		for addr, ks := range byMaster {
			if addr == dead {
				continue
			}
			v, err := s.Get(ctx, ks[0])
			require.NoError(t, err, "Get of a key on healthy master %s", addr)
			require.Equal(t, "v-"+ks[0], string(v))
		}
	}
	healthy()
	start := time.Now()
	_, err = s.Get(ctx, deadKeys[0])
	require.ErrorIs(t, err, stores.ErrNodeDown, "Get of a key on the killed master")
	var ne *stores.NodeError
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, dead, ne.Node)
	assert.Less(t, time.Since(start), time.Second, "a refused connection fails fast")

	healthy()
	got, err := stores.GetMany(ctx, s, all)
	require.ErrorIs(t, err, stores.ErrNodeDown, "GetMany with one master down")
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, dead, ne.Node)
	assert.ElementsMatch(t, deadKeys, ne.Keys, "the NodeError lists the dead master's keys")
	require.NotNil(t, got, "GetMany returns the healthy masters' values with the error")
	for addr, ks := range byMaster {
		for _, k := range ks {
			if addr == dead {
				assert.NotContains(t, got, k)
			} else {
				assert.Equal(t, "v-"+k, string(got[k]), "GetMany value of %s on healthy master %s", k, addr)
			}
		}
	}

	healthy()
	err = stores.SetMany(ctx, s, items, time.Hour)
	require.ErrorIs(t, err, stores.ErrNodeDown, "SetMany with one master down")
	require.ErrorAs(t, err, &ne)
	assert.ElementsMatch(t, deadKeys, ne.Keys)
	healthy()
	err = stores.DeleteMany(ctx, s, deadKeys)
	require.ErrorIs(t, err, stores.ErrNodeDown, "DeleteMany of the dead master's keys")
	healthy()
	err = s.Clear(ctx)
	require.ErrorIs(t, err, stores.ErrNodeDown, "Clear with one master down reports it")
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, dead, ne.Node)
	// Clear emptied the healthy masters.
	got, err = stores.GetMany(ctx, s, all)
	require.ErrorIs(t, err, stores.ErrNodeDown)
	assert.Empty(t, got, "Clear left keys on a healthy master")

	// The replica takes over; the store follows within 5 s of it.
	require.NoError(t, replicas[0].Resume())
	promoted := waitPromoted(t, c, prefix+victimKey, dead)
	deadline := promoted.Add(5 * time.Second)
	for {
		_, err := s.Get(ctx, victimKey)
		if err == nil || errors.Is(err, stores.ErrNotFound) {
			t.Logf("the killed master's keys answered %v after the promotion", time.Since(promoted).Round(time.Millisecond))
			break
		}
		require.True(t, time.Now().Before(deadline), "the killed master's keys still fail 5 s after its replica was promoted: %v", err)
		time.Sleep(10 * time.Millisecond) // pace the polling
	}

	// Every node down: no master answers, and the error is a plain one
	// once no call has succeeded for a second.
	for _, n := range c.Nodes {
		n.Kill()
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := s.Get(ctx, all[1])
		require.Error(t, err)
		if !errors.Is(err, stores.ErrNodeDown) {
			break
		}
		require.True(t, time.Now().Before(deadline), "still a NodeError 10 s after every node died: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	_, err = stores.GetMany(ctx, s, all)
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNodeDown, "GetMany with every node down")
}

// waitReplicated waits until every replica of the master at addr has
// acknowledged its writes (WAIT).
func waitReplicated(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.Wait(ctx, 1, 5000).Result()
	if err == nil && n < 1 {
		err = fmt.Errorf("no replica of %s acknowledged its writes", addr)
	}
	return err
}

// waitPromoted waits until the key's slot is served by a master other than
// dead, as that master itself reports (ROLE), and returns when it saw it.
func waitPromoted(t *testing.T, c *servertest.RedisCluster, key, dead string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, _, err := c.MasterOf(t.Context(), key); err == nil && m.Addr() != dead {
			rc := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
			role, err := rc.Do(t.Context(), "ROLE").Slice()
			rc.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return time.Now()
			}
		}
		require.True(t, time.Now().Before(deadline), "no replica of %s promoted within 30 s", dead)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisClusterWedgedMaster pauses one master (SIGSTOP: it accepts
// connections and answers nothing) under concurrent load, each call bounded
// by 300 ms as a Cache's store timeout would. Calls on its keys time out
// a few times, then are skipped at once (ErrNodeSkipped) but for one probe
// every half second, while every call on the other masters' keys succeeds.
// Once it resumes, its keys are served again within a second.
func TestRedisClusterWedgedMaster(t *testing.T) {
	ctx := t.Context()
	// A long node timeout: the paused master is not failed over.
	c := servertest.StartRedisCluster(t, "--cluster-require-full-coverage", "no", "--cluster-node-timeout", "60000")
	prefix := storetest.Namespace(t)
	s := openURL(t, clusterURL(c.Addrs(), "prefix="+url.QueryEscape(prefix)))
	byMaster := keysByMaster(t, c, prefix, 4)
	var wedgedAddr string
	for addr, ks := range byMaster {
		for _, k := range ks {
			require.NoError(t, s.Set(ctx, k, []byte("v"), time.Hour))
		}
		wedgedAddr = addr
	}
	var wedged *servertest.Server
	for _, n := range c.Nodes {
		if n.Addr() == wedgedAddr {
			wedged = n
		}
	}
	require.NotNil(t, wedged)
	require.NoError(t, wedged.Pause())
	paused := true
	t.Cleanup(func() {
		if paused {
			_ = wedged.Resume()
		}
	})

	const timeout = 300 * time.Millisecond
	var (
		slow, skipped, wedgedCalls atomic.Int64
		healthyErrs                atomic.Int64
		firstHealthyErr            atomic.Value
	)
	run := func(d time.Duration) {
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for g := range 8 {
			wg.Go(func() {
				for i := 0; time.Now().Before(stop); i++ {
					for addr, ks := range byMaster {
						k := ks[(g+i)%len(ks)]
						cctx, cancel := context.WithTimeout(ctx, timeout)
						t0 := time.Now()
						_, err := s.Get(cctx, k)
						took := time.Since(t0)
						cancel()
						if addr != wedgedAddr {
							if err != nil {
								healthyErrs.Add(1)
								firstHealthyErr.CompareAndSwap(nil, err.Error())
							}
							continue
						}
						wedgedCalls.Add(1)
						if errors.Is(err, stores.ErrNodeSkipped) {
							skipped.Add(1)
						}
						if took >= timeout/2 {
							slow.Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
	}
	start := time.Now()
	run(2 * time.Second)
	elapsed := time.Since(start)
	assert.Zero(t, healthyErrs.Load(), "calls on healthy masters failed while another was wedged: %v", firstHealthyErr.Load())
	assert.Positive(t, skipped.Load(), "no call on the wedged master was skipped")
	// The 8 goroutines may all be waiting on it when the skip starts (twice
	// over on a slow machine), then one call probes it per half second.
	maxSlow := int64(2*8 + elapsed/(500*time.Millisecond) + 1)
	assert.LessOrEqual(t, slow.Load(), maxSlow, "%d of %d calls on the wedged master waited for the timeout in %v; want most skipped",
		slow.Load(), wedgedCalls.Load(), elapsed)
	t.Logf("wedged master: %d calls, %d waited for the timeout, %d skipped", wedgedCalls.Load(), slow.Load(), skipped.Load())

	require.NoError(t, wedged.Resume())
	paused = false
	resumed := time.Now()
	deadline := resumed.Add(5 * time.Second)
	k := byMaster[wedgedAddr][0]
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := s.Get(cctx, k)
		cancel()
		if err == nil {
			t.Logf("the wedged master answered again %v after it resumed", time.Since(resumed).Round(time.Millisecond))
			break
		}
		require.True(t, time.Now().Before(deadline), "the resumed master's keys still fail after 5 s: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	assert.Less(t, time.Since(resumed), time.Second, "a resumed master is probed within half a second of its skip")
}

// quietRedis drops go-redis's own log lines (each refused dial of a dead
// node), which its global logger would print to stderr.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

// TestRedisClusterMasterRestart kills a master under concurrent load,
// calls Clear while it is down (a NodeError for it), and restarts it
// before the cluster could fail it over (its replica is paused): its keys
// are served again within a second of it being back, although the store
// skipped it, go-redis stopped dialling it and a Clear missed it.
func TestRedisClusterMasterRestart(t *testing.T) {
	ctx := t.Context()
	c := servertest.StartRedisCluster(t, "--cluster-require-full-coverage", "no")
	prefix := storetest.Namespace(t)
	s := openURL(t, clusterURL(c.Addrs(), "prefix="+url.QueryEscape(prefix)))
	byMaster := keysByMaster(t, c, prefix, 2)
	var victimAddr string
	for addr := range byMaster {
		victimAddr = addr
	}
	victim, replicas, err := c.MasterOf(ctx, prefix+byMaster[victimAddr][0])
	require.NoError(t, err)
	require.NoError(t, replicas[0].Pause())
	t.Cleanup(func() { _ = replicas[0].Resume() })
	victim.Kill()

	var back atomic.Int64 // unix nanos of the first success after the restart
	var restarted atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, ks := range byMaster {
					cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
					_, err := s.Get(cctx, ks[(g+i)%len(ks)])
					cancel()
					if r := restarted.Load(); r != 0 && errors.Is(err, stores.ErrNotFound) && ks[0] == byMaster[victimAddr][0] {
						back.CompareAndSwap(0, time.Now().UnixNano())
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(time.Second) // load on the dead master: not an assertion
	var ne *stores.NodeError
	require.ErrorAs(t, s.Clear(ctx), &ne, "Clear with a master down")
	assert.Equal(t, victim.Addr(), ne.Node)
	require.NoError(t, victim.Restart())
	restarted.Store(time.Now().UnixNano())
	// A restarted cluster node refuses queries for its first 2 s
	// (CLUSTER_WRITABLE_DELAY in Redis): it is back when it says
	// cluster_state:ok.
	admin := redis.NewClient(&redis.Options{Addr: victim.Addr(), MaxRetries: -1})
	defer admin.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := admin.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the restarted master is not ok within 10 s")
		time.Sleep(5 * time.Millisecond)
	}
	ready := time.Now()
	for back.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "the restarted master's keys still fail 10 s after it is back")
		time.Sleep(5 * time.Millisecond)
	}
	d := max(time.Unix(0, back.Load()).Sub(ready), 0)
	t.Logf("the restarted master said cluster_state:ok %v after its restart; its keys answered %v after that",
		ready.Sub(time.Unix(0, restarted.Load())).Round(time.Millisecond), d.Round(time.Millisecond))
	assert.LessOrEqual(t, d, time.Second, "a master that is back is used again within a second")
}

package stores_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// TestRedisClientSideCachingRefused checks that a go-redis client with
// client-side caching is refused, wherever it comes in: handed in, built
// from Options, or as the node clients of a cluster or ring (at NewRedis
// when its NewClient hook gives them a cache; at the first call that
// creates such a node otherwise).
func TestRedisClientSideCachingRefused(t *testing.T) {
	addr := rawRedis(t).Options().Addr
	csc := redis.NewClient(&redis.Options{Addr: addr, Protocol: 3, ClientSideCacheConfig: &redis.ClientSideCacheConfig{}})
	t.Cleanup(func() { csc.Close() })
	_, err := stores.NewRedis(stores.RedisConfig{Client: csc})
	require.ErrorIs(t, err, stores.ErrClientSideCaching, "a handed-in client with ClientSideCacheConfig")
	assert.Contains(t, err.Error(), "older than the store's own last write", "the error says why")

	_, err = stores.NewRedis(stores.RedisConfig{Options: &redis.UniversalOptions{Addrs: []string{addr}, Protocol: 3, ClientSideCacheConfig: &redis.ClientSideCacheConfig{}}})
	require.ErrorIs(t, err, stores.ErrClientSideCaching, "Options with ClientSideCacheConfig")

	addrs := servertest.RedisClusterAddrs(t)
	cluster := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs,
		NewClient: func(o *redis.Options) *redis.Client {
			o.Protocol = 3
			o.ClientSideCacheConfig = &redis.ClientSideCacheConfig{}
			return redis.NewClient(o)
		},
	})
	t.Cleanup(func() { cluster.Close() })
	_, err = stores.NewRedis(stores.RedisConfig{Client: cluster, Prefix: storetest.Namespace(t)})
	require.ErrorIs(t, err, stores.ErrClientSideCaching, "NewRedis of a cluster whose NewClient hook caches")
	assert.Contains(t, err.Error(), "ClusterOptions.NewClient", "the error names the hook")

	// Through echocache.New nobody pings: a hook that caches only for the
	// nodes other than the first seed passes NewRedis, and the store's
	// calls fail from the one that loads the slot map on.
	partial := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs,
		NewClient: func(o *redis.Options) *redis.Client {
			if o.Addr != addrs[0] {
				o.Protocol = 3
				o.ClientSideCacheConfig = &redis.ClientSideCacheConfig{}
			}
			return redis.NewClient(o)
		},
	})
	t.Cleanup(func() { partial.Close() })
	s, err := stores.NewRedis(stores.RedisConfig{Client: partial, Prefix: storetest.Namespace(t)})
	require.NoError(t, err, "the first seed's node client has no cache")
	ctx := t.Context()
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrClientSideCaching, "the Get that loaded the slot map")
	require.ErrorIs(t, s.Set(ctx, "k", []byte("v"), time.Minute), stores.ErrClientSideCaching, "a later Set")
	_, err = stores.GetMany(ctx, s, []string{"a", "b"})
	require.ErrorIs(t, err, stores.ErrClientSideCaching, "a later GetMany")
	require.ErrorIs(t, stores.Ping(ctx, s), stores.ErrClientSideCaching, "Ping")

	// A ring whose hook caches is refused too.
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: map[string]string{"a": addr},
		NewClient: func(o *redis.Options) *redis.Client {
			o.Protocol = 3
			o.ClientSideCacheConfig = &redis.ClientSideCacheConfig{}
			return redis.NewClient(o)
		},
	})
	t.Cleanup(func() { ring.Close() })
	_, err = stores.NewRedis(stores.RedisConfig{Client: ring})
	require.ErrorIs(t, err, stores.ErrClientSideCaching, "NewRedis of a ring whose shards cache")

	// The same clients without it are accepted.
	plain := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { plain.Close() })
	s, err = stores.NewRedis(stores.RedisConfig{Client: plain})
	require.NoError(t, err)
	require.NoError(t, stores.Ping(t.Context(), s))
}

// TestRedisReplicaReadsRefused checks that options that read from
// replicas are refused, naming the option: in Options, and on a cluster
// client handed in.
func TestRedisReplicaReadsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts redis.UniversalOptions
	}{
		{"ReadOnly", redis.UniversalOptions{Addrs: []string{"a:1", "b:1"}, ReadOnly: true}},
		{"RouteByLatency", redis.UniversalOptions{Addrs: []string{"a:1", "b:1"}, RouteByLatency: true}},
		{"RouteRandomly", redis.UniversalOptions{MasterName: "m", Addrs: []string{"a:1"}, RouteRandomly: true}},
	} {
		t.Run("nok, Options."+tt.name, func(t *testing.T) {
			_, err := stores.NewRedis(stores.RedisConfig{Options: &tt.opts})
			require.ErrorContains(t, err, "Options."+tt.name)
			assert.ErrorContains(t, err, "replicas")
		})
	}
	ro := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"a:1"}, ReadOnly: true})
	t.Cleanup(func() { ro.Close() })
	_, err := stores.NewRedis(stores.RedisConfig{Client: ro})
	require.ErrorContains(t, err, "Options.ReadOnly", "a handed-in cluster client that reads from replicas")

	_, err = stores.NewRedis(stores.RedisConfig{Options: &redis.UniversalOptions{Addrs: []string{"a:1", "b:1"}, DB: 2}})
	require.ErrorContains(t, err, "only database 0")
}

// TestRedisOptionsTopologies checks that Options builds a cluster store
// for several addresses and a sentinel-backed one for MasterName, both
// working on the shared servers.
func TestRedisOptionsTopologies(t *testing.T) {
	ctx := t.Context()
	sentinels, master := servertest.RedisSentinelAddrs(t)
	for name, opts := range map[string]*redis.UniversalOptions{
		"cluster":  {Addrs: servertest.RedisClusterAddrs(t)},
		"sentinel": {Addrs: sentinels, MasterName: master},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := stores.NewRedis(stores.RedisConfig{Options: opts, Prefix: storetest.Namespace(t)})
			require.NoError(t, err)
			defer s.Close()
			items := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3"), "d": []byte("4")}
			require.NoError(t, s.SetMany(ctx, items, time.Minute))
			got, err := s.GetMany(ctx, []string{"a", "b", "c", "d"})
			require.NoError(t, err)
			assert.Equal(t, items, got)
			require.NoError(t, s.Clear(ctx))
		})
	}
}

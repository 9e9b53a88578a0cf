package stores

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of a store's own Redis Cluster client (see [RedisConfig]).
const (
	// DefaultRedisClusterReloadInterval is how old the cluster's slot map
	// may grow before the client reloads it without being asked. It is a
	// backstop for changes that cause no errors (a master added); a failed
	// or moved node reloads the map at once.
	DefaultRedisClusterReloadInterval = 10 * time.Second
	// DefaultRedisClusterMinRetryBackoff is the shortest pause between two
	// attempts of one command on a cluster (go-redis's MinRetryBackoff).
	DefaultRedisClusterMinRetryBackoff = 5 * time.Millisecond
	// DefaultRedisClusterMaxRetryBackoff is the longest pause between two
	// attempts of one command on a cluster (go-redis's MaxRetryBackoff):
	// short, so that a retry after a failover soon reaches the new master.
	DefaultRedisClusterMaxRetryBackoff = 50 * time.Millisecond
)

// ErrClientSideCaching is returned for a go-redis client with client-side
// caching configured (Options.ClientSideCache or
// Options.ClientSideCacheConfig). [NewRedis] returns it for such a
// *redis.Client or UniversalOptions, and for a cluster or ring client
// whose NewClient hook builds node clients with it (checked by building
// one, never dialled). A node client with it that a cluster or ring
// creates later (a hook that caches for some addresses only) is seen as
// the slot map loads (go-redis's OnNewNode): from then on every call of
// the store returns ErrClientSideCaching. [Ping] also checks the node
// clients the client already had. Such a client may answer a Get from its
// own memory with a value older than this store's last Set, Delete or
// Clear: go-redis applies an invalidation only when it next reads the
// connection that carries it, so a store on it cannot promise to read its
// own writes. Use a client without it; a Cache that wants a tier in the
// process keeps one of its own.
var ErrClientSideCaching = errors.New("stores: redis: the client has go-redis client-side caching enabled " +
	"(Options.ClientSideCache or ClientSideCacheConfig); it can return a value older than the store's own " +
	"last write, so the store refuses it")

// redisTimeouts are the store's defaults for the fields every go-redis
// options type has, applied to the fields left at zero (go-redis reads a
// negative value as "none", so an explicit value is kept).
type redisTimeouts struct {
	dial, read, write *time.Duration
	dialerRetries     *int
	ctxTimeout        *bool
}

func (t redisTimeouts) apply() {
	if *t.dial == 0 {
		*t.dial = DefaultRedisDialTimeout
	}
	if *t.read == 0 {
		*t.read = DefaultRedisReadTimeout
	}
	if *t.write == 0 {
		*t.write = DefaultRedisWriteTimeout
	}
	if *t.dialerRetries == 0 {
		*t.dialerRetries = 1
	}
	*t.ctxTimeout = true
}

// applySingleDefaults applies the store's defaults to a single-server or
// sentinel-backed client: one retry, so that a dead server fails fast.
func applySingleDefaults(o *redis.Options) {
	redisTimeouts{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled}.apply()
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
}

func applyFailoverDefaults(o *redis.FailoverOptions) {
	redisTimeouts{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled}.apply()
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
}

// applyClusterDefaults applies the store's defaults to a cluster client.
// MaxRetries stays as given: its zero means no retry on the same
// connection, since the cluster client's own loop (MaxRedirects) already
// tries again, after a reload of the slot map.
func applyClusterDefaults(o *redis.ClusterOptions) {
	redisTimeouts{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled}.apply()
	if o.MinRetryBackoff == 0 {
		o.MinRetryBackoff = DefaultRedisClusterMinRetryBackoff
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = DefaultRedisClusterMaxRetryBackoff
	}
	if o.ClusterStateReloadInterval == 0 {
		o.ClusterStateReloadInterval = DefaultRedisClusterReloadInterval
	}
	// The store sends single-key commands (and PING, SCAN to one node):
	// each goes to its key's master, with no lookup of the command's
	// routing policy (COMMAND INFO) on every call.
	o.DisableRoutingPolicies = true
}

// newRedisClient builds the store's own client from universal options, the
// way go-redis's NewUniversalClient picks one (MasterName: a
// sentinel-backed client; several addresses or IsClusterMode: a cluster
// client; otherwise a single server), but with the store's defaults for
// each, and never a client that reads from replicas.
func newRedisClient(o *redis.UniversalOptions) (redis.UniversalClient, error) {
	if o.ClientSideCache != nil || o.ClientSideCacheConfig != nil {
		return nil, ErrClientSideCaching
	}
	if err := refuseReplicaReads(o.ReadOnly, o.RouteByLatency, o.RouteRandomly); err != nil {
		return nil, err
	}
	switch {
	case o.MasterName != "":
		fo := o.Failover()
		applyFailoverDefaults(fo)
		return redis.NewFailoverClient(fo), nil
	case len(o.Addrs) > 1 || o.IsClusterMode:
		if o.DB != 0 {
			return nil, fmt.Errorf("stores: redis: Options.DB %d: a cluster has only database 0", o.DB)
		}
		co := o.Cluster()
		applyClusterDefaults(co)
		return redis.NewClusterClient(co), nil
	default:
		so := o.Simple()
		applySingleDefaults(so)
		return redis.NewClient(so), nil
	}
}

// refuseReplicaReads refuses the options that send reads to replicas: a
// replica lags its master, so a Get right after the store's own Set could
// return the previous value.
func refuseReplicaReads(readOnly, byLatency, randomly bool) error {
	for _, o := range []struct {
		set  bool
		name string
	}{{readOnly, "ReadOnly"}, {byLatency, "RouteByLatency"}, {randomly, "RouteRandomly"}} {
		if o.set {
			return fmt.Errorf("stores: redis: Options.%s sends reads to replicas, which lag the master: "+
				"a read right after the store's own write could return the previous value", o.name)
		}
	}
	return nil
}

// checkClientSideCaching returns ErrClientSideCaching when a client handed
// to the store has client-side caching configured: a *redis.Client (a
// sentinel-backed one included) by its options; a cluster or ring by the
// client its NewClient hook builds for a node (built here for a seed
// address, never dialled, and closed), and a ring by its shards too. A
// node client made otherwise later is caught by watchClientSideCaching.
func checkClientSideCaching(c redis.UniversalClient) error {
	switch c := c.(type) {
	case *redis.Client:
		if hasClientSideCaching(c) {
			return ErrClientSideCaching
		}
	case *redis.ClusterClient:
		o := c.Options()
		if nodeHookCaches(o.NewClient, o.Addrs) {
			return fmt.Errorf("%w (ClusterOptions.NewClient builds node clients with it)", ErrClientSideCaching)
		}
	case *redis.Ring:
		o := c.Options()
		addrs := make([]string, 0, len(o.Addrs))
		for _, a := range o.Addrs {
			addrs = append(addrs, a)
		}
		if nodeHookCaches(o.NewClient, addrs) {
			return fmt.Errorf("%w (RingOptions.NewClient builds shard clients with it)", ErrClientSideCaching)
		}
		var csc atomic.Bool
		_ = c.ForEachShard(context.Background(), func(_ context.Context, node *redis.Client) error {
			if hasClientSideCaching(node) {
				csc.Store(true)
			}
			return nil
		})
		if csc.Load() {
			return ErrClientSideCaching
		}
	}
	return nil
}

// nodeHookCaches reports whether newClient, a cluster's or ring's hook that
// builds its node clients, gives them client-side caching. It builds one
// for the first seed address (go-redis dials lazily, so nothing connects)
// and closes it.
func nodeHookCaches(newClient func(*redis.Options) *redis.Client, addrs []string) bool {
	if newClient == nil {
		return false // go-redis's default node client has no client-side cache
	}
	addr := "127.0.0.1:6379"
	if len(addrs) > 0 {
		addr = addrs[0]
	}
	c := newClient(&redis.Options{Addr: addr})
	if c == nil {
		return false
	}
	defer c.Close()
	return hasClientSideCaching(c)
}

// watchClientSideCaching makes a cluster or ring client handed to r report
// each node client it creates from now on (go-redis's OnNewNode, called as
// the slot map or the shard list loads): one with client-side caching
// makes every later call of r fail with ErrClientSideCaching, and Ping
// too.
func (r *Redis) watchClientSideCaching(c redis.UniversalClient) {
	hook, ok := c.(interface{ OnNewNode(func(*redis.Client)) })
	if !ok {
		return
	}
	hook.OnNewNode(func(node *redis.Client) {
		if hasClientSideCaching(node) {
			r.csc.Store(true)
		}
	})
}

func hasClientSideCaching(c *redis.Client) bool {
	o := c.Options()
	return o.ClientSideCache != nil || o.ClientSideCacheConfig != nil
}

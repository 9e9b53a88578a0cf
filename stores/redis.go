package stores

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the redis store. They are short on purpose: a cache that
// cannot answer quickly is better skipped than waited for.
const (
	// DefaultPrefix is the namespace of a redis or memcached store whose
	// config leaves Prefix empty.
	DefaultPrefix = "echocache:"
	// DefaultRedisDialTimeout bounds connecting to redis.
	DefaultRedisDialTimeout = time.Second
	// DefaultRedisReadTimeout bounds each socket read.
	DefaultRedisReadTimeout = 500 * time.Millisecond
	// DefaultRedisWriteTimeout bounds each socket write.
	DefaultRedisWriteTimeout = 500 * time.Millisecond
	// DefaultRedisMaxValueSize is the largest value a redis store writes:
	// 512 MiB, the largest string Redis holds and the default of its
	// proto-max-bulk-len.
	DefaultRedisMaxValueSize = 512 << 20
)

// redisDropTimeout bounds the UNLINK that follows a failed write, which
// runs even when the caller's context has ended (see Failed writes in the
// package doc).
const redisDropTimeout = time.Second

// clearBatch is how many keys Clear asks SCAN for and unlinks at once.
const clearBatch = 500

// RedisConfig configures [NewRedis].
type RedisConfig struct {
	// Client is an existing client whose connection pool the store shares:
	// a *redis.Client, *redis.ClusterClient, *redis.Ring or sentinel-backed
	// client (redis.NewFailoverClient). The store never closes it; its
	// timeouts are left as they are. A client with go-redis's client-side
	// caching is refused with ErrClientSideCaching (see it for when a
	// cluster's node clients are checked), and one that reads
	// from replicas (ReadOnly, RouteByLatency, RouteRandomly) with an error
	// naming the option: both can answer a read with a value older than
	// the store's own last write.
	// Optional. Default value: a client built from Options or Addr.
	Client redis.UniversalClient

	// Addr is the host:port of a single redis server, used when Client and
	// Options are both nil.
	// Optional. Default value "127.0.0.1:6379".
	Addr string

	// Options builds the store's own client when Client is nil, the way
	// redis.NewUniversalClient does: MasterName gives a sentinel-backed
	// client (redis.NewFailoverClient, never one that reads from
	// replicas), several Addrs or IsClusterMode a cluster client, otherwise
	// a single-server client. The store works on a copy. Zero timeouts get
	// the store's defaults (DefaultRedisDialTimeout,
	// DefaultRedisReadTimeout, DefaultRedisWriteTimeout); DialerRetries
	// defaults to one attempt, and MaxRetries to one retry (none on a
	// cluster, whose client tries again on its own after reloading its
	// slot map); ContextTimeoutEnabled is always turned on so a caller's
	// context deadline bounds every call. A cluster client reloads its
	// slot map every DefaultRedisClusterReloadInterval and whenever a node
	// fails. ReadOnly, RouteByLatency, RouteRandomly and client-side
	// caching are refused (see Client).
	// Optional. Default value: a single-server client on Addr.
	Options *redis.UniversalOptions

	// Prefix is the namespace: every key is stored as Prefix+key and Clear
	// removes only keys that start with Prefix. Two stores on one database
	// must not use prefixes where one is the start of the other. On a
	// cluster the prefix must not hold a hash tag ("{...}"), which would
	// put every key in one slot of one master.
	// Optional. Default value DefaultPrefix ("echocache:").
	Prefix string

	// DefaultTTL is the lifetime of entries written with ttl 0 (see the
	// package doc). Zero keeps them until deleted or evicted.
	// Optional. Default value 0.
	DefaultTTL time.Duration

	// MaxValueSize is the largest value written, in bytes. A larger value
	// is refused with ErrTooLarge without being sent, and the key's
	// previous value is removed. Set it to the server's proto-max-bulk-len
	// when that is lower than the default, so that an oversized value is
	// refused here rather than by a server that drops the connection.
	// Optional. Default value DefaultRedisMaxValueSize (512 MiB).
	MaxValueSize int64
}

// Redis is a [Store] on a redis server, a Redis Cluster or a
// Sentinel-managed master, through go-redis. It is safe for concurrent use.
//
// Add is one SET NX; GetMany is one MGET (a pipeline of GETs on a cluster or
// ring, where keys live in different slots); SetMany and DeleteMany are one
// pipeline or UNLINK; Incr is INCRBY. Clear walks the namespace with
// SCAN MATCH and UNLINKs it in batches on every master; it never uses
// FLUSHDB, FLUSHALL or KEYS.
//
// A SET that fails (refused as too large, refused by the server, for
// instance "OOM command not allowed" under maxmemory with noeviction, or
// cut short on the network) is followed by an UNLINK of its key, so that
// the key does not keep the value the write was meant to replace. The
// UNLINK runs even when the caller's context has ended, bounded by one
// second; the call waits for it only while its context allows.
//
// A store on a single server, with a client it built, watches the server
// after a call fails to connect to it, and replaces its client as soon as
// the server accepts connections again: a restarted server is used again
// within about 50 ms of its return, where go-redis's pool, once it has
// failed to connect PoolSize times, would try again only once a second
// (redis_redial.go). A store on a Sentinel-managed master does the same
// with its sentinel-backed client: a master that comes back, or the
// replica a sentinel announces in its place, is used again at once.
//
// # Redis Cluster
//
// Keys are spread over the masters by their hash slot. When a master does
// not answer (refused or dropped connection, timeout, LOADING,
// CLUSTERDOWN...) while the others do, calls on its keys fail with a
// [NodeError] naming it, which echocache's circuit breaker does not count
// against the whole store; GetMany returns the other masters' values
// together with it, and SetMany and DeleteMany list its keys in it. Each
// such failure asks the client to reload the slot map, so the keys reach
// the master's replica as soon as the cluster has promoted it. A master
// that fails three times in a row by a connection error or a timeout is
// skipped for half a second, then probed by one call: skipped calls fail at
// once with a NodeError whose cause is ErrNodeSkipped, and are not sent
// (a skipped write changes nothing). When no call of the store succeeded
// for a second, every master is taken to be down and errors are plain
// ones, so that the breaker skips the whole store.
type Redis struct {
	client     redis.UniversalClient
	owned      bool                   // the store built client and closes it
	sharded    bool                   // keys of one call may live on different nodes or slots
	cluster    *redis.ClusterClient   // the client, when it is a cluster client
	nodes      *clusterNodes          // per-master health, on a cluster
	sentinel   *redis.FailoverOptions // of a sentinel-backed client the store built (for a local tier)
	conns      *masterConns           // that client's connections by server (local_sentinel.go)
	prefix     string
	defaultTTL time.Duration
	maxValue   int64
	closed     atomic.Bool
	csc        atomic.Bool  // a node client of a handed-in cluster or ring has client-side caching
	timerless  bool         // calls end by their context's deadline alone (deadline.go)
	redial     *redisRedial // the client, replaced after its server (or a sentinel's master) comes back; nil: client is it (redis_redial.go)
}

var _ interface {
	Store
	Pinger
} = (*Redis)(nil)

// NewRedis returns a redis store. It does not contact the server; use
// [Ping] to check it at start-up.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("stores: redis: negative DefaultTTL %s", cfg.DefaultTTL)
	}
	if cfg.MaxValueSize < 0 {
		return nil, fmt.Errorf("stores: redis: negative MaxValueSize %d", cfg.MaxValueSize)
	}
	switch {
	case cfg.Client != nil:
		if cfg.Options != nil || cfg.Addr != "" {
			return nil, errors.New("stores: redis: set Client, Options or Addr, not several")
		}
		if err := checkClientSideCaching(cfg.Client); err != nil {
			return nil, err
		}
		if c, ok := cfg.Client.(*redis.ClusterClient); ok {
			o := c.Options()
			if err := refuseReplicaReads(o.ReadOnly, o.RouteByLatency, o.RouteRandomly); err != nil {
				return nil, err
			}
		}
		r, err := newRedisStore(cfg, cfg.Client, false)
		if err != nil {
			return nil, err
		}
		r.watchClientSideCaching(cfg.Client)
		return r, nil
	default:
		var opts redis.UniversalOptions
		if cfg.Options != nil {
			if cfg.Addr != "" {
				return nil, errors.New("stores: redis: set Options.Addrs or Addr, not both")
			}
			opts = *cfg.Options
			opts.Addrs = append([]string(nil), opts.Addrs...)
		}
		if len(opts.Addrs) == 0 {
			addr := cfg.Addr
			if addr == "" {
				addr = "127.0.0.1:6379"
			}
			opts.Addrs = []string{addr}
		}
		client, err := newRedisClient(&opts)
		if err != nil {
			return nil, err
		}
		r, err := newRedisStore(cfg, client, true)
		if c, single := client.(*redis.Client); err == nil && single && opts.MasterName == "" {
			r.timerless = true
			r.redial = newRedisRedial(c, nil)
		}
		if err == nil && opts.MasterName != "" {
			fo := opts.Failover()
			applyFailoverDefaults(fo)
			r.setSentinel(fo)
		}
		return r, err // NewRedis returns *Redis: a nil one with an error
	}
}

// newRedisStore returns a store on client; owned says the store closes it.
func newRedisStore(cfg RedisConfig, client redis.UniversalClient, owned bool) (*Redis, error) {
	if cfg.MaxValueSize == 0 {
		cfg.MaxValueSize = DefaultRedisMaxValueSize
	}
	r := &Redis{client: client, owned: owned, prefix: cfg.Prefix, defaultTTL: cfg.DefaultTTL, maxValue: cfg.MaxValueSize}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	switch c := client.(type) {
	case *redis.ClusterClient:
		if tag, ok := hashTag(r.prefix); ok {
			if owned {
				_ = client.Close()
			}
			return nil, fmt.Errorf("stores: redis: prefix %q holds the hash tag {%s}: on a cluster every key would live in one slot of one master", r.prefix, tag)
		}
		r.sharded = true
		r.cluster = c
		r.nodes = newClusterNodes(c)
	case *redis.Ring:
		r.sharded = true
	}
	return r, nil
}

// hashTag returns the hash tag of a Redis Cluster key: the text between
// its first '{' and the first '}' after it, when not empty (Redis Cluster
// specification, "Hash tags").
func hashTag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	n := strings.IndexByte(key[open+1:], '}')
	if n <= 0 {
		return "", false
	}
	return key[open+1 : open+1+n], true
}

func (r *Redis) key(k string) string { return r.prefix + k }

// cli returns the client to call.
func (r *Redis) cli() redis.UniversalClient {
	if r.redial != nil {
		return r.redial.cur.Load()
	}
	return r.client
}

// check returns ErrClosed after Close and the context's error when it is done.
func (r *Redis) check(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.csc.Load() {
		return ErrClientSideCaching
	}
	return ctx.Err()
}

// fail wraps a client error, preferring the context's error when the call
// was cut short by it.
func (r *Redis) fail(ctx context.Context, op string, err error) error {
	if r.redial != nil {
		r.redial.failed(err)
	}
	if errors.Is(err, redis.ErrClosed) {
		err = fmt.Errorf("%w (%v)", ErrClosed, err) // closed by a concurrent Close
	} else if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", cerr, err) // both: err may be a NodeError
	}
	return fmt.Errorf("stores: redis %s: %w", op, err)
}

// admit checks, on a cluster, that the master of the full key is not
// skipped; it returns that master when it looked it up (see
// clusterNodes.admit).
func (r *Redis) admit(ctx context.Context, op, full string) (string, error) {
	if r.nodes == nil {
		return "", nil
	}
	node, err := r.nodes.admit(ctx, full)
	if err != nil {
		return node, r.fail(ctx, op, r.nodes.verdict(err))
	}
	return node, nil
}

// done records the outcome of a single-key call on a cluster and returns
// its error, a NodeError when the key's master did not answer.
func (r *Redis) done(ctx context.Context, node, full string, err error) error {
	if r.nodes == nil {
		return err
	}
	return r.nodes.done(ctx, node, full, err)
}

// redisTTL turns a Store ttl into the expiration go-redis expects: zero for
// no expiry, otherwise at least one millisecond, rounded up to whole
// milliseconds (redis's PX resolution). It never returns a negative value,
// which go-redis would read as KEEPTTL.
func (r *Redis) redisTTL(ttl time.Duration) time.Duration {
	d := resolveTTL(ttl, r.defaultTTL)
	if d <= 0 {
		return 0
	}
	if rem := d % time.Millisecond; rem != 0 {
		d += time.Millisecond - rem
	}
	return d
}

// Get implements [Store].
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	full := r.key(key)
	node, err := r.admit(ctx, "get", full)
	if err != nil {
		return nil, err
	}
	v, err := r.cli().Get(ctx, full).Bytes()
	err = r.done(ctx, node, full, err)
	if r.csc.Load() { // found while this read loaded the slot map
		return nil, ErrClientSideCaching
	}
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, r.fail(ctx, "get", err)
	}
	return v, nil
}

// Set implements [Store].
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	full := r.key(key)
	if err := r.tooLarge(value); err != nil {
		return r.drop(ctx, err, full)
	}
	node, err := r.admit(ctx, "set", full)
	if err != nil {
		return err
	}
	err = r.cli().Set(ctx, full, value, r.redisTTL(ttl)).Err()
	if err = r.done(ctx, node, full, err); err != nil {
		return r.drop(ctx, r.fail(ctx, "set", err), full)
	}
	return nil
}

func (r *Redis) tooLarge(value []byte) error {
	if int64(len(value)) > r.maxValue {
		return fmt.Errorf("stores: redis: %w: %d bytes, limit %d", ErrTooLarge, len(value), r.maxValue)
	}
	return nil
}

// drop UNLINKs the full keys after a write of them failed with err, so
// that they do not keep the values the write was meant to replace (see the
// type's doc), waiting for it while ctx allows (dropAfterFailedWrite). It
// returns err, with the UNLINK's own failure when there is one.
func (r *Redis) drop(ctx context.Context, err error, keys ...string) error {
	derr := dropAfterFailedWrite(ctx, redisDropTimeout, func(dctx context.Context) error {
		if r.nodes != nil {
			return r.unlinkCluster(dctx, keys)
		}
		return unlink(dctx, r.cli(), keys, r.sharded)
	})
	if derr != nil {
		return fmt.Errorf("%w; removing the previous value: %v", err, derr)
	}
	return err
}

// Add implements [Store] with one SET NX (PX ttl).
func (r *Redis) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := r.check(ctx); err != nil {
		return false, err
	}
	if err := r.tooLarge(value); err != nil {
		return false, err // Add replaces nothing: a present value stays
	}
	full := r.key(key)
	node, err := r.admit(ctx, "add", full)
	if err != nil {
		return false, err
	}
	ok, err := r.cli().SetNX(ctx, full, value, r.redisTTL(ttl)).Result()
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	if err = r.done(ctx, node, full, err); err != nil {
		return false, r.fail(ctx, "add", err)
	}
	return ok, nil
}

// Delete implements [Store].
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	full := r.key(key)
	node, err := r.admit(ctx, "delete", full)
	if err != nil {
		return err
	}
	err = r.cli().Unlink(ctx, full).Err()
	if err = r.done(ctx, node, full, err); err != nil {
		return r.fail(ctx, "delete", err)
	}
	return nil
}

// GetMany implements [MultiGetter] with one MGET, or a pipeline of GETs on a
// cluster or ring. On a cluster whose masters do not all answer, it
// returns the values of those that did together with a NodeError per
// master that did not.
func (r *Redis) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if r.sharded {
		cmds := make([]*redis.StringCmd, len(keys))
		err := r.perKey(ctx, keys, func(p redis.Pipeliner, i int, full string) {
			cmds[i] = p.Get(ctx, full)
		}, func(i int) error {
			v, err := cmds[i].Bytes()
			if err == nil {
				out[keys[i]] = v
			} else if errors.Is(err, redis.Nil) {
				err = nil
			}
			return err
		})
		if r.csc.Load() { // found while this read loaded the slot map
			return nil, ErrClientSideCaching
		}
		if err != nil {
			if errors.Is(err, ErrNodeDown) {
				return out, r.fail(ctx, "get many", err)
			}
			return nil, r.fail(ctx, "get many", err)
		}
		return out, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.key(k)
	}
	vals, err := r.cli().MGet(ctx, full...).Result()
	if err != nil {
		return nil, r.fail(ctx, "get many", err)
	}
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			out[keys[i]] = []byte(v)
		case []byte:
			out[keys[i]] = append([]byte{}, v...)
		}
	}
	return out, nil
}

// perKey runs one command per key in one pipeline, for keys that may live
// in different slots (a cluster or ring): add queues key i (full: with the
// prefix) and result reads its outcome after the pipeline ran (nil for
// success or a miss). On a cluster, keys of a skipped master are not sent,
// and the keys that failed are reported per master (clusterNodes.manyError).
// It returns nil, or the error of the call.
func (r *Redis) perKey(ctx context.Context, keys []string, add func(p redis.Pipeliner, i int, full string), result func(i int) error) error {
	nodes := make([]string, len(keys))
	var failed []keyResult
	sent := make([]bool, len(keys))
	_, perr := r.cli().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			full := r.key(k)
			if r.nodes != nil {
				node, err := r.nodes.admit(ctx, full)
				nodes[i] = node
				if err != nil {
					failed = append(failed, keyResult{key: k, node: node, err: err})
					continue
				}
			}
			sent[i] = true
			add(p, i, full)
		}
		return nil
	})
	var first error
	var answered []string
	okAnswer := false
	for i := range keys {
		if !sent[i] {
			continue
		}
		err := result(i)
		if r.nodes == nil {
			if err != nil && first == nil {
				first = err
			}
			continue
		}
		if err != nil {
			failed = append(failed, keyResult{key: keys[i], node: nodes[i], err: err})
		}
		if err == nil || !nodeUnavailable(ctx, err) && !errors.Is(ctx.Err(), context.Canceled) {
			okAnswer = true // the node answered, if only with an error about the data
			if nodes[i] != "" && !slices.Contains(answered, nodes[i]) {
				answered = append(answered, nodes[i])
			}
		}
	}
	if r.nodes == nil {
		if first == nil && perr != nil && !errors.Is(perr, redis.Nil) {
			first = perr
		}
		return first
	}
	if okAnswer {
		r.nodes.succeeded("")
		for _, n := range answered {
			r.nodes.succeeded(n)
		}
	}
	return r.nodes.manyError(ctx, failed, r.key)
}

// SetMany implements [MultiSetter] with one pipeline.
func (r *Redis) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	for _, v := range items {
		if err := r.tooLarge(v); err != nil {
			// None is written, and every key loses its previous value.
			full := make([]string, len(keys))
			for i, k := range keys {
				full[i] = r.key(k)
			}
			return r.drop(ctx, err, full...)
		}
	}
	exp := r.redisTTL(ttl)
	cmds := make([]*redis.StatusCmd, len(keys))
	var err error
	if r.nodes != nil {
		err = r.perKey(ctx, keys, func(p redis.Pipeliner, i int, full string) {
			cmds[i] = p.Set(ctx, full, items[keys[i]], exp)
		}, func(i int) error { return cmds[i].Err() })
	} else {
		_, err = r.cli().Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.Set(ctx, r.key(k), items[k], exp)
			}
			return nil
		})
	}
	if err != nil {
		var failed []string
		for i, cmd := range cmds {
			// A key not sent (its master skipped) was not written either:
			// it keeps its previous value, as a call refused before it
			// starts would.
			if cmd != nil && cmd.Err() != nil {
				failed = append(failed, r.key(keys[i]))
			}
		}
		if len(failed) == 0 && r.nodes == nil {
			for _, k := range keys {
				failed = append(failed, r.key(k))
			}
		}
		return r.drop(ctx, r.fail(ctx, "set many", err), failed...)
	}
	return nil
}

// DeleteMany implements [MultiDeleter] with one UNLINK (a pipeline of UNLINKs on a
// cluster or ring).
func (r *Redis) DeleteMany(ctx context.Context, keys []string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	var err error
	if r.nodes != nil {
		err = r.unlinkKeys(ctx, keys)
	} else {
		full := make([]string, len(keys))
		for i, k := range keys {
			full[i] = r.key(k)
		}
		err = unlink(ctx, r.cli(), full, r.sharded)
	}
	if err != nil {
		return r.fail(ctx, "delete many", err)
	}
	return nil
}

// unlinkKeys UNLINKs keys (without the prefix) on a cluster, one per key in
// a pipeline.
func (r *Redis) unlinkKeys(ctx context.Context, keys []string) error {
	cmds := make([]*redis.IntCmd, len(keys))
	return r.perKey(ctx, keys, func(p redis.Pipeliner, i int, full string) {
		cmds[i] = p.Unlink(ctx, full)
	}, func(i int) error { return cmds[i].Err() })
}

// unlinkCluster is unlinkKeys for full keys.
func (r *Redis) unlinkCluster(ctx context.Context, full []string) error {
	keys := make([]string, len(full))
	for i, k := range full {
		keys[i] = strings.TrimPrefix(k, r.prefix)
	}
	return r.unlinkKeys(ctx, keys)
}

// unlink removes keys with one UNLINK, or with one UNLINK per key in a
// pipeline when the keys may sit in different cluster slots.
func unlink(ctx context.Context, c redis.Cmdable, keys []string, perKey bool) error {
	if len(keys) == 0 {
		return nil
	}
	if !perKey {
		return c.Unlink(ctx, keys...).Err()
	}
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		return nil
	})
	return err
}

// Incr implements [Incrementer] with INCRBY. A new counter has no expiry; an
// existing one keeps its expiry.
func (r *Redis) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := r.check(ctx); err != nil {
		return 0, err
	}
	full := r.key(key)
	node, err := r.admit(ctx, "incr", full)
	if err != nil {
		return 0, err
	}
	n, err := r.cli().IncrBy(ctx, full, delta).Result()
	if err = r.done(ctx, node, full, err); err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && (strings.Contains(err.Error(), "not an integer") ||
			strings.Contains(err.Error(), "overflow") || strings.HasPrefix(err.Error(), "WRONGTYPE")) {
			return 0, fmt.Errorf("stores: redis incr: %w (%v)", ErrNotInteger, err)
		}
		return 0, r.fail(ctx, "incr", err)
	}
	return n, nil
}

// Clear implements [Store]: SCAN MATCH prefix* and UNLINK in batches, on
// every master of a cluster and every shard of a ring. On a cluster whose
// masters do not all answer, it clears those that do and returns a
// NodeError per master that did not: the keys of such a master are still
// on its replica, and are back when the replica is promoted.
func (r *Redis) Clear(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	var err error
	switch c := r.cli().(type) {
	case *redis.ClusterClient:
		err = r.clearCluster(ctx, c)
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			return r.clearNode(ctx, node, false)
		})
	default:
		err = r.clearNode(ctx, r.cli(), false)
	}
	if err != nil {
		return r.fail(ctx, "clear", err)
	}
	return nil
}

// clearCluster clears every master of c at once (ForEachMaster reloads the
// slot map first, so it sees the masters of now).
func (r *Redis) clearCluster(ctx context.Context, c *redis.ClusterClient) error {
	var (
		mu       sync.Mutex
		errs     []error
		answered bool
	)
	err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		addr := node.Options().Addr
		err := r.nodes.admitNode(ctx, addr)
		if err == nil {
			// A SCAN returns keys of many slots: UNLINK them one by one.
			err = r.clearNode(ctx, node, true)
		}
		switch {
		case errors.Is(err, ErrNodeSkipped):
		case r.nodes.record(ctx, addr, err):
			err = &NodeError{Node: addr, Err: withContextErr(ctx, err)}
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			answered = true
		} else {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return err // no slot map: no master answers
	}
	if len(errs) == 0 {
		return nil
	}
	joined := errors.Join(errs...)
	for _, e := range errs {
		if !errors.Is(e, ErrNodeDown) {
			return allNodesDown(joined)
		}
	}
	if !answered {
		return allNodesDown(joined)
	}
	return joined
}

func (r *Redis) clearNode(ctx context.Context, c redis.Cmdable, perKey bool) error {
	match := globEscape(r.prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, clearBatch).Result()
		if err != nil {
			return err
		}
		if err := unlink(ctx, c, keys, perKey); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// globEscape escapes the characters that redis's glob matching (SCAN
// MATCH) treats specially, so a prefix matches only itself.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Ping implements [Pinger] with PING. On a cluster or ring it also checks
// that no node client has client-side caching (ErrClientSideCaching); on
// one server, that the server is not a node of a Redis Cluster (INFO
// cluster), which a redis+cluster:// store is for. Sentinels that do not
// know the master's name get an error that says so.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if err := r.cli().Ping(ctx).Err(); err != nil {
		return r.fail(ctx, "ping", r.explainPing(err))
	}
	if err := r.checkNotClusterNode(ctx); err != nil {
		return err
	}
	var csc atomic.Bool
	check := func(_ context.Context, node *redis.Client) error {
		if hasClientSideCaching(node) {
			csc.Store(true)
		}
		return nil
	}
	switch c := r.cli().(type) {
	case *redis.ClusterClient:
		if err := c.ForEachShard(ctx, check); err != nil {
			return r.fail(ctx, "ping", err)
		}
	case *redis.Ring:
		_ = c.ForEachShard(ctx, check)
	}
	if csc.Load() || r.csc.Load() {
		return ErrClientSideCaching
	}
	return nil
}

// Close implements [Store]. It closes the client only if the store built
// it; a client handed in through RedisConfig.Client stays open. Later calls
// return ErrClosed.
func (r *Redis) Close() error {
	if r.closed.Swap(true) || !r.owned {
		return nil
	}
	if r.redial != nil {
		return r.redial.close()
	}
	return r.client.Close()
}

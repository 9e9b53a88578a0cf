package stores

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
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
	// client. The store never closes it; its timeouts are left as they are.
	// Optional. Default value: a client built from Options or Addr.
	Client redis.UniversalClient

	// Addr is the host:port of a single redis server, used when Client and
	// Options are both nil.
	// Optional. Default value "127.0.0.1:6379".
	Addr string

	// Options builds the store's own client when Client is nil (several
	// Addrs give a cluster client, MasterName a sentinel-backed one). The
	// store works on a copy. Zero timeouts get the store's defaults
	// (DefaultRedisDialTimeout, DefaultRedisReadTimeout,
	// DefaultRedisWriteTimeout); MaxRetries and DialerRetries default to one
	// attempt more, so a dead server fails fast; ContextTimeoutEnabled is
	// always turned on so a caller's context deadline bounds every call.
	// Optional. Default value: a single-server client on Addr.
	Options *redis.UniversalOptions

	// Prefix is the namespace: every key is stored as Prefix+key and Clear
	// removes only keys that start with Prefix. Two stores on one database
	// must not use prefixes where one is the start of the other.
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

// Redis is a [Store] on a redis server, cluster or sentinel group, through
// go-redis's UniversalClient. It is safe for concurrent use.
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
// second.
type Redis struct {
	client     redis.UniversalClient
	owned      bool // the store built client and closes it
	sharded    bool // keys of one call may live on different nodes or slots
	prefix     string
	defaultTTL time.Duration
	maxValue   int64
	closed     atomic.Bool
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
	if cfg.MaxValueSize == 0 {
		cfg.MaxValueSize = DefaultRedisMaxValueSize
	}
	r := &Redis{prefix: cfg.Prefix, defaultTTL: cfg.DefaultTTL, maxValue: cfg.MaxValueSize}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	switch {
	case cfg.Client != nil:
		if cfg.Options != nil || cfg.Addr != "" {
			return nil, errors.New("stores: redis: set Client, Options or Addr, not several")
		}
		r.client = cfg.Client
	default:
		var opts redis.UniversalOptions
		if cfg.Options != nil {
			if cfg.Addr != "" {
				return nil, errors.New("stores: redis: set Options.Addrs or Addr, not both")
			}
			opts = *cfg.Options
		}
		if len(opts.Addrs) == 0 {
			addr := cfg.Addr
			if addr == "" {
				addr = "127.0.0.1:6379"
			}
			opts.Addrs = []string{addr}
		}
		applyRedisDefaults(&opts)
		r.client = redis.NewUniversalClient(&opts)
		r.owned = true
	}
	switch r.client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		r.sharded = true
	}
	return r, nil
}

func applyRedisDefaults(o *redis.UniversalOptions) {
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultRedisDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultRedisReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultRedisWriteTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	o.ContextTimeoutEnabled = true
}

func (r *Redis) key(k string) string { return r.prefix + k }

// check returns ErrClosed after Close and the context's error when it is done.
func (r *Redis) check(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// fail wraps a client error, preferring the context's error when the call
// was cut short by it.
func (r *Redis) fail(ctx context.Context, op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		err = fmt.Errorf("%w (%v)", ErrClosed, err) // closed by a concurrent Close
	} else if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return fmt.Errorf("stores: redis %s: %w", op, err)
}

// redisTTL turns a Store ttl into the expiration go-redis expects: zero for
// no expiry, otherwise at least one millisecond, rounded up to whole
// milliseconds (redis's PX resolution). It never returns a negative value,
// which go-redis would read as KEEPTTL.
func (r *Redis) redisTTL(ttl time.Duration) time.Duration {
	d := ResolveTTL(ttl, r.defaultTTL)
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
	v, err := r.client.Get(ctx, r.key(key)).Bytes()
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
	if err := r.tooLarge(value); err != nil {
		return r.drop(ctx, err, r.key(key))
	}
	if err := r.client.Set(ctx, r.key(key), value, r.redisTTL(ttl)).Err(); err != nil {
		return r.drop(ctx, r.fail(ctx, "set", err), r.key(key))
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
// type's doc). It returns err, with the UNLINK's own failure when there is
// one.
func (r *Redis) drop(ctx context.Context, err error, keys ...string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisDropTimeout)
	defer cancel()
	if derr := unlink(dctx, r.client, keys, r.sharded); derr != nil {
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
	ok, err := r.client.SetNX(ctx, r.key(key), value, r.redisTTL(ttl)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, r.fail(ctx, "add", err)
	}
	return ok, nil
}

// Delete implements [Store].
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if err := r.client.Unlink(ctx, r.key(key)).Err(); err != nil {
		return r.fail(ctx, "delete", err)
	}
	return nil
}

// GetMany implements [Store] with one MGET, or a pipeline of GETs on a
// cluster or ring.
func (r *Redis) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.key(k)
	}
	if r.sharded {
		cmds := make([]*redis.StringCmd, len(keys))
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range full {
				cmds[i] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, r.fail(ctx, "get many", err)
		}
		for i, cmd := range cmds {
			v, err := cmd.Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, r.fail(ctx, "get many", err)
			}
			out[keys[i]] = v
		}
		return out, nil
	}
	vals, err := r.client.MGet(ctx, full...).Result()
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

// SetMany implements [Store] with one pipeline.
func (r *Redis) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	for _, v := range items {
		if err := r.tooLarge(v); err != nil {
			// None is written, and every key loses its previous value.
			full := make([]string, 0, len(items))
			for k := range items {
				full = append(full, r.key(k))
			}
			return r.drop(ctx, err, full...)
		}
	}
	exp := r.redisTTL(ttl)
	keys := make([]string, 0, len(items))
	cmds := make([]*redis.StatusCmd, 0, len(items))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, v := range items {
			keys = append(keys, r.key(k))
			cmds = append(cmds, p.Set(ctx, r.key(k), v, exp))
		}
		return nil
	})
	if err != nil {
		var failed []string
		for i, cmd := range cmds {
			if cmd.Err() != nil {
				failed = append(failed, keys[i])
			}
		}
		if len(failed) == 0 {
			failed = keys
		}
		return r.drop(ctx, r.fail(ctx, "set many", err), failed...)
	}
	return nil
}

// DeleteMany implements [Store] with one UNLINK (a pipeline of UNLINKs on a
// cluster or ring).
func (r *Redis) DeleteMany(ctx context.Context, keys []string) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.key(k)
	}
	if err := unlink(ctx, r.client, full, r.sharded); err != nil {
		return r.fail(ctx, "delete many", err)
	}
	return nil
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

// Incr implements [Store] with INCRBY. A new counter has no expiry; an
// existing one keeps its expiry.
func (r *Redis) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := r.check(ctx); err != nil {
		return 0, err
	}
	n, err := r.client.IncrBy(ctx, r.key(key), delta).Result()
	if err != nil {
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
// every master of a cluster and every shard of a ring.
func (r *Redis) Clear(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return r.clearNode(ctx, node, true)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			return r.clearNode(ctx, node, false)
		})
	default:
		err = r.clearNode(ctx, r.client, false)
	}
	if err != nil {
		return r.fail(ctx, "clear", err)
	}
	return nil
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

// Ping implements [Pinger] with PING.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.fail(ctx, "ping", err)
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
	return r.client.Close()
}

// openRedis opens redis:// and rediss:// URLs:
//
//	redis://[user:pass@]host[:port][/db]?prefix=app:&default_ttl=5m
//
// Parameters: prefix, default_ttl, dial_timeout, read_timeout,
// write_timeout, pool_size, max_value_size (RedisConfig.MaxValueSize). rediss:// connects with TLS, verifying the
// server's certificate against host.
func openRedis(_ context.Context, u *url.URL) (Store, error) {
	scheme := strings.ToLower(u.Scheme)
	if u.Opaque != "" {
		return nil, fmt.Errorf("stores: %s URL: want %s://host:port/db, got an opaque URL", scheme, scheme)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("stores: %s URL: unexpected fragment #%s", scheme, u.Fragment)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "6379"
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("stores: %s URL: bad port %q", scheme, port)
	}
	opts := &redis.UniversalOptions{Addrs: []string{net.JoinHostPort(host, port)}}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	switch db := strings.TrimPrefix(u.Path, "/"); {
	case db == "":
	default:
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("stores: %s URL: path %q: want a database number such as /0", scheme, u.Path)
		}
		opts.DB = n
	}
	if scheme == "rediss" {
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}

	p := NewParams(u)
	prefix, hasPrefix := p.lookup("prefix")
	cfg := RedisConfig{Options: opts, Prefix: prefix}
	cfg.DefaultTTL = p.Duration("default_ttl", 0)
	cfg.MaxValueSize = p.Bytes("max_value_size", 0)
	opts.DialTimeout = p.Duration("dial_timeout", 0)
	opts.ReadTimeout = p.Duration("read_timeout", 0)
	opts.WriteTimeout = p.Duration("write_timeout", 0)
	opts.PoolSize = p.Int("pool_size", 0)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if hasPrefix && prefix == "" {
		return nil, fmt.Errorf("stores: %s URL: parameter prefix is empty: Clear needs a namespace", scheme)
	}
	return NewRedis(cfg)
}

func init() {
	Register("redis", openRedis)
	Register("rediss", openRedis)
}

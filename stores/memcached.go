package stores

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"golang.org/x/sync/errgroup"
)

// Defaults of the memcached store.
const (
	// DefaultMemcachedTimeout bounds each connect, read and write.
	DefaultMemcachedTimeout = 500 * time.Millisecond
	// DefaultMemcachedMaxItemSize is memcached's default item size limit (-I).
	DefaultMemcachedMaxItemSize = 1 << 20
	// DefaultMemcachedMaxIdleConns is how many idle connections are kept per server.
	DefaultMemcachedMaxIdleConns = 16
)

const (
	// memcachedItemOverhead is the room left in an item for the key (at
	// most 250 bytes) and memcached's item header.
	memcachedItemOverhead = 512
	// maxMemcachedPrefix keeps prefix + generation + hashed key under
	// memcached's 250-byte key limit.
	maxMemcachedPrefix = 128
	// hashMarker starts the part of a key that is a hash of the caller's
	// key. A caller's key that starts with it is always hashed, so a plain
	// key never looks like a hashed one.
	hashMarker = '#'
	// memcachedRelativeLimit is the longest exptime memcached reads as
	// relative seconds; longer values are absolute Unix times.
	memcachedRelativeLimit = 30 * 24 * 60 * 60
	// nativeIncrMax bounds the deltas sent to memcached's incr. Below it, a
	// sum that leaves the int64 range has as many digits as the counter
	// had, so taking the delta back restores the counter byte for byte
	// (memcached pads a counter it shrinks in place with spaces). Larger
	// deltas go through the compare-and-swap loop, which checks first.
	nativeIncrMax = 1 << 59
	// casAttempts bounds the compare-and-swap loop of a negative Incr.
	casAttempts = 1000
	// manyParallel bounds the concurrent writes of SetMany and DeleteMany.
	manyParallel = 8
)

// MemcachedConfig configures [NewMemcached].
type MemcachedConfig struct {
	// Servers are the host:port addresses of the memcached servers; keys
	// are spread over them by hash.
	// Required.
	Servers []string

	// Username and Password turn on memcached's ASCII authentication (a
	// server started with -Y authfile): every new connection sends them
	// first. Bad credentials make calls fail with an error wrapping ErrAuth.
	// Optional. Default value: no authentication.
	Username string
	// Password goes with Username.
	// Optional. Default value "".
	Password string

	// Prefix is the namespace: every key starts with it, and Clear retires
	// only keys under it. At most 128 bytes, no spaces or control bytes.
	// Optional. Default value DefaultPrefix ("echocache:").
	Prefix string

	// DefaultTTL is the lifetime of entries written with ttl 0 (see the
	// package doc). Zero keeps them until deleted or evicted.
	// Optional. Default value 0.
	DefaultTTL time.Duration

	// Timeout bounds each connect (with authentication), read and write on
	// a server socket. It also bounds calls whose context has no deadline:
	// gomemcache takes no context, so the store checks the context before
	// each round trip and relies on Timeout during it.
	// Optional. Default value DefaultMemcachedTimeout (500ms).
	Timeout time.Duration

	// MaxIdleConns is how many idle connections are kept per server.
	// Optional. Default value DefaultMemcachedMaxIdleConns (16).
	MaxIdleConns int

	// MaxItemSize is the server's item size limit (memcached's -I). A value
	// longer than MaxItemSize minus 512 bytes (room for the key and the
	// item header) is refused with ErrTooLarge without a round trip.
	// Optional. Default value DefaultMemcachedMaxItemSize (1 MiB).
	MaxItemSize int64
}

// Memcached is a [Store] on one or more memcached servers, through
// gomemcache, optionally with memcached's ASCII authentication. It is safe
// for concurrent use.
//
// # Keys
//
// A key is stored as prefix + generation + ":" + key when that is a legal
// memcached key (at most 250 bytes, no spaces or control bytes) and key does
// not start with '#'; otherwise as prefix + generation + ":#" + the
// hex SHA-256 of key. Two different keys never map to one.
//
// # Clear
//
// memcached cannot list keys, and flush_all would wipe every application on
// a shared server, so the namespace has a generation: a counter stored under
// prefix + "gen", created with an unpredictable start value and no expiry.
// Clear increments it; entries of older generations are never read again
// and age out of memcached's LRU.
//
// Reads learn the current generation without an extra round trip: Get and
// GetMany fetch the counter together with the data keys of the generation
// seen last, in one multi-get, and fetch again only when the counter moved.
// Writes that must be exact (Add, Delete, DeleteMany, Incr) read the counter
// first. Set and SetMany use the generation seen last: a Set racing with a
// Clear from another process may land in the retired generation, which reads
// as if the Set had happened before the Clear.
//
// # Incr
//
// Incr has Redis's signed 64-bit semantics and, like INCRBY, keeps the
// entry's expiry. A non-negative delta uses memcached's incr, which keeps
// the expiry itself (adding the key, without expiry, when it is missing);
// memcached counts unsigned, so negative values and deltas go through a
// compare-and-swap loop that reads the value with its remaining TTL (a
// meta get, memcached 1.6 or later) and writes it back with that TTL, to
// the second.
//
// # Contexts
//
// gomemcache takes no context. The store checks the context before every
// round trip, and a call whose context has a Done channel returns the
// context's error as soon as the context ends: the round trip under way
// goes on in the background until it completes or MemcachedConfig.Timeout
// (per connect, read and write) ends it, and its result is dropped. A call
// abandoned this way may still take effect, as with any network store.
type Memcached struct {
	client     *memcache.Client
	servers    *memcache.ServerList
	meta       *metaConns
	prefix     string
	genKey     string
	gen        atomic.Pointer[string] // generation seen last; nil until known
	defaultTTL time.Duration
	maxValue   int
	closed     atomic.Bool
}

var _ interface {
	Store
	Pinger
} = (*Memcached)(nil)

// NewMemcached returns a memcached store. It resolves the server addresses
// but does not contact them; use [Ping] to check them at start-up.
func NewMemcached(cfg MemcachedConfig) (*Memcached, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("stores: memcached: no servers")
	}
	if cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("stores: memcached: negative DefaultTTL %s", cfg.DefaultTTL)
	}
	if cfg.Timeout < 0 || cfg.MaxIdleConns < 0 || cfg.MaxItemSize < 0 {
		return nil, errors.New("stores: memcached: negative Timeout, MaxIdleConns or MaxItemSize")
	}
	if err := checkCredentials(cfg.Username, cfg.Password); err != nil {
		return nil, err
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(prefix) > maxMemcachedPrefix || !legalMemcachedKey(prefix) {
		return nil, fmt.Errorf("stores: memcached: prefix %q: want at most %d bytes without spaces or control bytes", prefix, maxMemcachedPrefix)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultMemcachedTimeout
	}
	maxItem := cfg.MaxItemSize
	if maxItem == 0 {
		maxItem = DefaultMemcachedMaxItemSize
	}
	if maxItem <= memcachedItemOverhead {
		return nil, fmt.Errorf("stores: memcached: MaxItemSize %d is too small", maxItem)
	}
	idle := cfg.MaxIdleConns
	if idle == 0 {
		idle = DefaultMemcachedMaxIdleConns
	}
	servers := new(memcache.ServerList)
	if err := servers.SetServers(cfg.Servers...); err != nil {
		return nil, fmt.Errorf("stores: memcached: servers %v: %w", cfg.Servers, err)
	}
	c := memcache.NewFromSelector(servers)
	c.Timeout = timeout
	c.MaxIdleConns = idle
	dial := (&net.Dialer{Timeout: timeout}).DialContext
	if cfg.Username != "" {
		dial = authDialer(cfg.Username, cfg.Password, timeout)
		c.DialContext = dial
	}
	return &Memcached{
		client:     c,
		servers:    servers,
		meta:       &metaConns{dial: dial, timeout: timeout, maxIdle: min(idle, 4)},
		prefix:     prefix,
		genKey:     prefix + "gen",
		defaultTTL: cfg.DefaultTTL,
		maxValue:   int(min(maxItem-memcachedItemOverhead, math.MaxInt32)),
	}, nil
}

// MaxValueSize returns the longest value the store accepts; longer values
// give ErrTooLarge.
func (m *Memcached) MaxValueSize() int { return m.maxValue }

// legalMemcachedKey reports whether k can be sent as a memcached key.
func legalMemcachedKey(k string) bool {
	if len(k) > 250 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] == 0x7f {
			return false
		}
	}
	return true
}

// dataKey returns the memcached key of the caller's key in generation gen.
func (m *Memcached) dataKey(gen, key string) string {
	k := m.prefix + gen + ":" + key
	if (key == "" || key[0] != hashMarker) && legalMemcachedKey(k) {
		return k
	}
	sum := sha256.Sum256([]byte(key))
	return m.prefix + gen + ":" + string(hashMarker) + hex.EncodeToString(sum[:])
}

// expiration turns a Store ttl into memcached's exptime. memcached counts
// whole seconds on a clock that ticks once a second, so an exptime of n
// seconds lives between n-1 and n seconds; the store rounds ttl up and adds
// one second, so an entry lives at least ttl. Beyond 30 days the exptime is
// an absolute Unix time; one past 2038 (int32) becomes "never expires".
func (m *Memcached) expiration(ttl time.Duration, now time.Time) int32 {
	d := resolveTTL(ttl, m.defaultTTL)
	if d <= 0 {
		return 0
	}
	secs := int64(d / time.Second)
	if d%time.Second != 0 {
		secs++
	}
	secs++
	if secs <= memcachedRelativeLimit {
		return int32(secs)
	}
	abs := now.Unix() + secs
	if abs > math.MaxInt32 || abs < 0 {
		return 0
	}
	return int32(abs)
}

func (m *Memcached) check(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// fail wraps an error with the operation, mapping memcached's "object too
// large" answer to ErrTooLarge.
func (m *Memcached) fail(op string, err error) error {
	if !errors.Is(err, ErrTooLarge) && strings.Contains(err.Error(), "too large") {
		return fmt.Errorf("stores: memcached %s: %w (%v)", op, ErrTooLarge, err)
	}
	return fmt.Errorf("stores: memcached %s: %w", op, err)
}

func (m *Memcached) tooLarge(value []byte) error {
	if len(value) > m.maxValue {
		return fmt.Errorf("stores: memcached: %w: %d bytes, limit %d", ErrTooLarge, len(value), m.maxValue)
	}
	return nil
}

// cachedGen returns the generation seen last, loading it on first use.
func (m *Memcached) cachedGen(ctx context.Context) (string, error) {
	if g := m.gen.Load(); g != nil {
		return *g, nil
	}
	return m.loadGen(ctx)
}

// loadGen reads the current generation from the server, creating the
// counter when it is missing (first use, or evicted: a fresh start value
// then retires every entry, as a Clear would).
func (m *Memcached) loadGen(ctx context.Context) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		it, err := m.client.Get(m.genKey)
		if err == nil {
			return m.setGen(it.Value)
		}
		if !errors.Is(err, memcache.ErrCacheMiss) {
			return "", err
		}
		start := strconv.FormatInt(time.Now().UnixNano(), 10)
		err = m.client.Add(&memcache.Item{Key: m.genKey, Value: []byte(start)})
		if err == nil {
			return m.setGen([]byte(start))
		}
		if !errors.Is(err, memcache.ErrNotStored) {
			return "", err
		}
		// Another client created it in between: read it.
	}
	return "", errors.New("generation counter keeps disappearing")
}

func (m *Memcached) setGen(v []byte) (string, error) {
	s := strings.TrimRight(string(v), " ") // memcached pads counters it shrinks in place
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return "", fmt.Errorf("generation counter %s holds %q, not a number", m.genKey, v)
	}
	m.gen.Store(&s)
	return s, nil
}

// getOp is Get without the context bound.
func (m *Memcached) getOp(ctx context.Context, key string) ([]byte, error) {
	vals, err := m.getMany(ctx, []string{key})
	if err != nil {
		return nil, m.fail("get", err)
	}
	v, ok := vals[key]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// getManyOp is GetMany without the context bound.
func (m *Memcached) getManyOp(ctx context.Context, keys []string) (map[string][]byte, error) {
	vals, err := m.getMany(ctx, keys)
	if err != nil {
		return nil, m.fail("get many", err)
	}
	return vals, nil
}

func (m *Memcached) getMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	g := m.gen.Load()
	if g == nil {
		gen, err := m.loadGen(ctx)
		if err != nil {
			return nil, err
		}
		return out, m.fetch(ctx, gen, keys, false, out)
	}
	return out, m.fetch(ctx, *g, keys, true, out)
}

// fetch gets keys of generation gen into out. With withGen it fetches the
// counter in the same round trip and, when the generation has moved,
// fetches again under the new one.
func (m *Memcached) fetch(ctx context.Context, gen string, keys []string, withGen bool, out map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names := make([]string, 0, len(keys)+1)
	owner := make(map[string]string, len(keys))
	for _, k := range keys {
		dk := m.dataKey(gen, k)
		if _, dup := owner[dk]; !dup {
			names = append(names, dk)
			owner[dk] = k
		}
	}
	if withGen {
		names = append(names, m.genKey)
	}
	items, err := m.client.GetMulti(names)
	if err != nil {
		return err
	}
	if withGen {
		var cur string
		if it, ok := items[m.genKey]; ok {
			if cur, err = m.setGen(it.Value); err != nil {
				return err
			}
		} else if cur, err = m.loadGen(ctx); err != nil {
			return err
		}
		if cur != gen {
			return m.fetch(ctx, cur, keys, false, out)
		}
	}
	for dk, it := range items {
		if k, ok := owner[dk]; ok {
			out[k] = it.Value
		}
	}
	return nil
}

// setOp is Set without the context bound.
func (m *Memcached) setOp(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	gen, err := m.cachedGen(ctx)
	if err != nil {
		if tl := m.tooLarge(value); tl != nil {
			// Refused, and the old value cannot be reached to remove it.
			return fmt.Errorf("%w; removing the previous value: %v", tl, err)
		}
		return m.fail("set", err)
	}
	dk := m.dataKey(gen, key)
	if err := m.tooLarge(value); err != nil {
		return m.drop(err, dk)
	}
	if err := ctx.Err(); err != nil {
		return m.drop(err, dk)
	}
	it := &memcache.Item{Key: dk, Value: value, Expiration: m.expiration(ttl, time.Now())}
	if err := m.client.Set(it); err != nil {
		return m.drop(m.fail("set", err), dk)
	}
	return nil
}

// drop removes the data key dk after a write of it failed with err, so
// that the key does not keep the value the write was meant to replace (see
// Failed writes in the package doc). memcached already unlinks the item
// when it refuses a SET; the delete covers the refusals made here and the
// writes cut short on the network. It returns err, with the delete's own
// failure when there is one.
func (m *Memcached) drop(err error, dk string) error {
	if derr := m.client.Delete(dk); derr != nil && !errors.Is(derr, memcache.ErrCacheMiss) {
		return fmt.Errorf("%w; removing the previous value: %v", err, derr)
	}
	return err
}

// setManyOp is SetMany without the context bound.
func (m *Memcached) setManyOp(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	var refused error
	for _, v := range items {
		if refused = m.tooLarge(v); refused != nil {
			break
		}
	}
	gen, err := m.cachedGen(ctx)
	if err != nil {
		if refused != nil {
			return fmt.Errorf("%w; removing the previous values: %v", refused, err)
		}
		return m.fail("set many", err)
	}
	exp := m.expiration(ttl, time.Now())
	var g errgroup.Group
	g.SetLimit(manyParallel)
	for k, v := range items {
		g.Go(func() error {
			dk := m.dataKey(gen, k)
			if refused != nil {
				// One value is refused: none is written and every key
				// loses its previous value.
				return m.drop(refused, dk)
			}
			err := ctx.Err()
			if err == nil {
				err = m.client.Set(&memcache.Item{Key: dk, Value: v, Expiration: exp})
			}
			if err != nil {
				return m.drop(err, dk)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return m.fail("set many", err)
	}
	return nil
}

// addOp is Add without the context bound.
func (m *Memcached) addOp(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	if err := m.tooLarge(value); err != nil {
		return false, err
	}
	gen, err := m.loadGen(ctx)
	if err != nil {
		return false, m.fail("add", err)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	err = m.client.Add(&memcache.Item{Key: m.dataKey(gen, key), Value: value, Expiration: m.expiration(ttl, time.Now())})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, memcache.ErrNotStored):
		return false, nil
	default:
		return false, m.fail("add", err)
	}
}

// deleteOp is Delete without the context bound.
func (m *Memcached) deleteOp(ctx context.Context, key string) error {
	return m.deleteManyOp(ctx, []string{key})
}

// deleteManyOp is DeleteMany without the context bound.
func (m *Memcached) deleteManyOp(ctx context.Context, keys []string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	gen, err := m.loadGen(ctx)
	if err != nil {
		return m.fail("delete", err)
	}
	var g errgroup.Group
	g.SetLimit(manyParallel)
	for _, k := range keys {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := m.client.Delete(m.dataKey(gen, k)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return m.fail("delete", err)
	}
	return nil
}

// incrOp is Incr without the context bound.
func (m *Memcached) incrOp(ctx context.Context, key string, delta int64) (int64, error) {
	if err := m.check(ctx); err != nil {
		return 0, err
	}
	gen, err := m.loadGen(ctx)
	if err != nil {
		return 0, m.fail("incr", err)
	}
	k := m.dataKey(gen, key)
	n, err := m.incr(ctx, k, delta)
	if err != nil {
		return 0, m.fail("incr", err)
	}
	return n, nil
}

func (m *Memcached) incr(ctx context.Context, k string, delta int64) (int64, error) {
	for attempt := 0; delta >= 0 && delta < nativeIncrMax && attempt < casAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := m.client.Increment(k, uint64(delta))
		switch {
		case err == nil:
			if n > math.MaxInt64 {
				// The counter left the signed range: take the delta back,
				// as Redis would have refused it.
				_, _ = m.client.Decrement(k, uint64(delta))
				return 0, fmt.Errorf("%w: incrementing by %d would overflow", ErrNotInteger, delta)
			}
			return int64(n), nil
		case errors.Is(err, memcache.ErrCacheMiss):
			if ok, err := m.addCounter(k, delta); err != nil || ok {
				return delta, err
			}
			// Created by someone else in between: increment it.
		case strings.Contains(err.Error(), "non-numeric"):
			// A negative counter or not a number: the CAS loop decides.
			return m.casIncr(ctx, k, delta)
		default:
			return 0, err
		}
	}
	return m.casIncr(ctx, k, delta)
}

// addCounter creates a counter holding delta, with no expiry. It reports
// false when the key exists.
func (m *Memcached) addCounter(k string, delta int64) (bool, error) {
	err := m.client.Add(&memcache.Item{Key: k, Value: []byte(strconv.FormatInt(delta, 10))})
	if errors.Is(err, memcache.ErrNotStored) {
		return false, nil
	}
	return err == nil, err
}

// casIncr adds delta with a read and a compare-and-swap that keeps the
// entry's expiry, retrying when another client wrote in between.
func (m *Memcached) casIncr(ctx context.Context, k string, delta int64) (int64, error) {
	for attempt := 0; attempt < casAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		it, found, err := m.metaGet(k)
		if err == nil && !found {
			ok, err := m.addCounter(k, delta)
			if err != nil {
				return 0, err
			}
			if ok {
				return delta, nil
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		cur, err := parseCounter(it.value)
		if err != nil {
			return 0, err
		}
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			return 0, fmt.Errorf("%w: %d%+d would overflow", ErrNotInteger, cur, delta)
		}
		next := cur + delta
		err = m.client.CompareAndSwap(&memcache.Item{
			Key:        k,
			Value:      []byte(strconv.FormatInt(next, 10)),
			CasID:      it.cas,
			Expiration: keepExpiration(it.ttl, time.Now()),
		})
		switch {
		case err == nil:
			return next, nil
		case errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
			casBackoff(attempt)
			continue
		default:
			return 0, err
		}
	}
	return 0, fmt.Errorf("incr: still contended after %d compare-and-swap attempts", casAttempts)
}

// casBackoff sleeps a random moment that grows with attempt (up to 2ms), so
// that writers contending for one counter stop colliding in lockstep.
func casBackoff(attempt int) {
	limit := time.Duration(min(attempt+1, 20)) * 100 * time.Microsecond
	time.Sleep(rand.N(limit))
}

// parseCounter reads a counter the way Redis does: a decimal int64 in
// canonical form (no sign on positives, no leading zeros or spaces). It
// tolerates the trailing spaces memcached leaves when it shrinks a counter
// in place.
func parseCounter(v []byte) (int64, error) {
	s := strings.TrimRight(string(v), " ")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%w: %.32q", ErrNotInteger, v)
	}
	return n, nil
}

// clearOp is Clear without the context bound.
func (m *Memcached) clearOp(ctx context.Context) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	n, err := m.client.Increment(m.genKey, 1)
	if errors.Is(err, memcache.ErrCacheMiss) {
		// No counter (never created, or evicted): a new one with a fresh
		// start value retires every entry just as well.
		m.gen.Store(nil)
		_, err = m.loadGen(ctx)
		if err != nil {
			return m.fail("clear", err)
		}
		return nil
	}
	if err != nil {
		return m.fail("clear", err)
	}
	s := strconv.FormatUint(n, 10)
	m.gen.Store(&s)
	return nil
}

// pingOp is Ping without the context bound.
func (m *Memcached) pingOp(ctx context.Context) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if err := m.client.Ping(); err != nil {
		return m.fail("ping", err)
	}
	return nil
}

// Close implements [Store]: it closes idle connections; later calls return
// ErrClosed.
func (m *Memcached) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.meta.close()
	return m.client.Close()
}

// openMemcached opens memcached:// URLs:
//
//	memcached://host:port[,host2:port]?prefix=app:&default_ttl=5m
//	memcached://user:pass@host:port
//
// A missing port is 11211. Parameters: prefix, default_ttl, timeout,
// max_item_size, max_idle_conns.
func openMemcached(_ context.Context, u *url.URL) (Store, error) {
	if u.Opaque != "" {
		return nil, errors.New("stores: memcached URL: want memcached://host:port, got an opaque URL")
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("stores: memcached URL: unexpected fragment #%s", u.Fragment)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("stores: memcached URL: unexpected path %q", u.Path)
	}
	if u.Host == "" {
		return nil, errors.New("stores: memcached URL: no server (want memcached://host:port)")
	}
	var servers []string
	for _, s := range strings.Split(u.Host, ",") {
		addr, err := memcachedAddr(s)
		if err != nil {
			return nil, err
		}
		servers = append(servers, addr)
	}
	cfg := MemcachedConfig{Servers: servers}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	p := NewParams(u)
	prefix, hasPrefix := p.lookup("prefix")
	cfg.Prefix = prefix
	cfg.DefaultTTL = p.Duration("default_ttl", 0)
	cfg.Timeout = p.Duration("timeout", 0)
	cfg.MaxItemSize = p.Bytes("max_item_size", 0)
	cfg.MaxIdleConns = p.Int("max_idle_conns", 0)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if hasPrefix && prefix == "" {
		return nil, errors.New("stores: memcached URL: parameter prefix is empty: Clear needs a namespace")
	}
	return NewMemcached(cfg)
}

func memcachedAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("stores: memcached URL: empty server in the host list")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "11211"
	}
	if host == "" {
		return "", fmt.Errorf("stores: memcached URL: server %q has no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("stores: memcached URL: server %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

func init() {
	Register("memcached", openMemcached)
}

// The exported methods run their round trips through bounded, so that a
// call returns when its context ends even though gomemcache takes no
// context: the round trip goes on in the background until it completes or
// MemcachedConfig.Timeout ends it, and its result is dropped. A context
// without Done (context.Background) costs nothing extra.

func bounded[T any](ctx context.Context, op func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		return op()
	}
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, fmt.Errorf("stores: memcached: %w", err)
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := op()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("stores: memcached: %w", ctx.Err())
	}
}

func bounded0(ctx context.Context, op func() error) error {
	_, err := bounded(ctx, func() (struct{}, error) { return struct{}{}, op() })
	return err
}

// Get implements [Store] with one multi-get of the generation counter and
// the key (a second get only when the generation moved).
func (m *Memcached) Get(ctx context.Context, key string) ([]byte, error) {
	return bounded(ctx, func() ([]byte, error) { return m.getOp(ctx, key) })
}

// GetMany implements [Store] like Get.
func (m *Memcached) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	return bounded(ctx, func() (map[string][]byte, error) { return m.getManyOp(ctx, keys) })
}

// Set implements [Store], in the generation seen last.
func (m *Memcached) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return bounded0(ctx, func() error { return m.setOp(ctx, key, value, ttl) })
}

// SetMany implements [Store], in the generation seen last, with a few
// writes in flight at once. Every value is checked against the size limit
// before anything is written.
func (m *Memcached) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	return bounded0(ctx, func() error { return m.setManyOp(ctx, items, ttl) })
}

// Add implements [Store] with memcached's add, in the current generation.
func (m *Memcached) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return bounded(ctx, func() (bool, error) { return m.addOp(ctx, key, value, ttl) })
}

// Delete implements [Store], in the current generation.
func (m *Memcached) Delete(ctx context.Context, key string) error {
	return bounded0(ctx, func() error { return m.deleteOp(ctx, key) })
}

// DeleteMany implements [Store] with one delete per key (a few in flight at
// once), in the current generation.
func (m *Memcached) DeleteMany(ctx context.Context, keys []string) error {
	return bounded0(ctx, func() error { return m.deleteManyOp(ctx, keys) })
}

// Incr implements [Store] with Redis's signed 64-bit semantics (see the
// type's doc).
func (m *Memcached) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	return bounded(ctx, func() (int64, error) { return m.incrOp(ctx, key, delta) })
}

// Clear implements [Store] by incrementing the namespace's generation; it
// never flushes the server.
func (m *Memcached) Clear(ctx context.Context) error {
	return bounded0(ctx, func() error { return m.clearOp(ctx) })
}

// Ping implements [Pinger]: every server must answer, after accepting the
// credentials when the store has them.
func (m *Memcached) Ping(ctx context.Context) error {
	return bounded0(ctx, func() error { return m.pingOp(ctx) })
}

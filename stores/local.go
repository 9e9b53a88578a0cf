package stores

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/internal/record"
	"github.com/maypok86/otter/v2"
)

// Defaults of a [LocalTier].
const (
	// DefaultLocalMaxBytes is the default of [LocalConfig.MaxBytes].
	DefaultLocalMaxBytes = 32 << 20
	// DefaultLocalMaxAge is how long a local copy lives at most in front of
	// a store that does not announce changes (memcached, file): the
	// longest another process's change can go unseen.
	DefaultLocalMaxAge = 5 * time.Second
)

// localStripes is how many invalidation counters a tier keeps: a read
// that may fill the tier notes its key's counter before asking the shared
// store and fills only if the counter has not moved since.
const localStripes = 1024

// localClockResolution is how often the tier reads the time to expire
// its copies.
const localClockResolution = 5 * time.Millisecond

// LocalConfig configures [NewLocalTier].
type LocalConfig struct {
	// MaxBytes bounds the memory the local copies use: keys, values and a
	// fixed overhead per entry, as [MemoryConfig.MaxBytes] counts them.
	// The tier evicts with W-TinyLFU, like [Memory].
	// Optional. Default value DefaultLocalMaxBytes (32 MiB).
	MaxBytes int64

	// MaxAge bounds how long a local copy is served without asking the
	// shared store again. In front of a store that announces every change
	// of its keys (redis, a Redis Cluster, a Sentinel-managed master) a
	// copy is dropped when the change is announced, so no bound is needed;
	// in front of one that does not (memcached, file), MaxAge is how long
	// another process's Set, Delete or Clear can go unseen here. Whatever
	// MaxAge, a copy never outlives its entry.
	// Optional. Default value DefaultLocalMaxAge (5s) in front of a store
	// without announcements; 0 (no bound besides the entry's own expiry)
	// in front of redis.
	MaxAge time.Duration

	// Logger receives the tier's warnings: its invalidation connection
	// lost and back, a server refusing CLIENT TRACKING. echo.Logger and
	// echocache.Logger satisfy it.
	// Optional. Default value nil: no logging.
	Logger interface {
		Warnf(format string, args ...any)
	}
}

// LocalTier is a [Store] that keeps copies of what it reads from a shared
// store (redis, memcached...) in the process, so that a read it can answer
// from them makes no round trip. It is safe for concurrent use.
//
// # Coherence
//
// Every write through the tier (Set, SetMany, Add, Incr, Delete,
// DeleteMany, Clear) drops the local copies of its keys when it returns,
// so a process always reads its own writes. Other processes' writes are
// seen as follows:
//
//   - In front of redis (one server, a Redis Cluster or a Sentinel-managed
//     master), the tier holds one connection per master on which redis
//     announces every change of a key under the store's prefix (Redis's
//     client-side caching, CLIENT TRACKING ... BCAST PREFIX, on a RESP2
//     connection redirected to itself). Any change is announced: a write
//     by another process, by redis-cli or a program in another language,
//     an expiry, an eviction, FLUSHDB. The copy is dropped when the
//     announcement arrives, typically well under a millisecond after the
//     write. While such a connection is down the tier answers nothing
//     from memory (every read goes to the shared store), and when it is
//     back every copy is dropped, since announcements may have been lost.
//     In front of a Sentinel-managed master the connection goes to the
//     master of the newest configuration the sentinels announce (the
//     highest config-epoch, followed on every sentinel listed): at each
//     switch the tier drops every copy and connects to the new master,
//     answers nothing while no sentinel answers, and nothing while one of
//     the store's own connections still reaches another server (go-redis
//     asked a sentinel that has not heard of the switch yet).
//   - In front of any other store, a copy lives at most MaxAge
//     (DefaultLocalMaxAge, 5s): another process's change can go unseen
//     for that long.
//
// A copy never outlives its entry, whatever MaxAge: the tier reads the
// entry's expiry with its value, at no extra cost. In front of redis it
// reads the remaining TTL (PTTL, in the same round trip); in front of
// memcached, the expiry the store records in each item's flags (whole
// seconds: the copy ends a second before it); in front of the file store,
// the expiry each entry file records (nanoseconds). A copy is served up to
// 5ms past its end (the tier reads a coarse clock). MaxAge bounds only
// what other processes change: in front of memcached or the file store,
// another process's Set, Delete or Clear of a key that has a copy here is
// seen when the copy ends, at most MaxAge after it was made.
//
// A read that races with another process's write cannot store a value
// older than that write: each key belongs to one of 1024 invalidation
// counters, which every announcement and flush moves, and a read fills
// the tier only if its key's counter did not move while it asked the
// shared store.
type LocalTier struct {
	shared  Store
	mem     *Memory
	clock   *otter.CoarseClock // mem's
	maxAge  time.Duration
	expiry  expiringReader      // shared, when it reads remaining TTLs
	channel invalidationChannel // nil in front of a store without announcements
	logger  interface{ Warnf(string, ...any) }
	seed    maphash.Seed

	// down counts the parts of the channel (one per master) that are not
	// subscribed; the tier answers from memory only when it is 0.
	down    atomic.Int32
	epoch   atomic.Uint64 // moved by every flush
	stripes [localStripes]atomic.Uint64

	hits, misses, invalidations, flushes atomic.Int64
	closed                               atomic.Bool
}

// LocalStats are a [LocalTier]'s counters since it was created
// ([LocalTier.LocalStats]).
type LocalStats struct {
	Hits          int64 // reads answered from the process
	Misses        int64 // reads that asked the shared store
	Invalidations int64 // keys dropped because they changed, here or in another process
	Flushes       int64 // times every copy was dropped (connection lost or back, Clear, FLUSHDB, failover)
	Coherent      bool  // the tier answers from the process now (its invalidation connections are up)
}

// expiringReader is implemented by shared stores that can read a value
// together with the time it has left, in the same round trip.
type expiringReader interface {
	getExpiring(ctx context.Context, key string) (expiring, error)
	getManyExpiring(ctx context.Context, keys []string) (map[string]expiring, error)
}

// Every store a tier can front reads expiries: redis (one server, a
// Redis Cluster, a Sentinel-managed master), memcached (one server, a
// pool, ASCII or SASL authentication) and the file store.
var (
	_ expiringReader = (*Redis)(nil)
	_ expiringReader = (*Memcached)(nil)
	_ expiringReader = (*File)(nil)
)

// expiring is a value and how long it has left.
type expiring struct {
	v     []byte
	left  time.Duration // > 0: expires after left; NoExpiry: never; 0: now (no copy is kept)
	known bool          // left is known; a copy is kept only when it is (or MaxAge bounds it)
}

// invalidationChannel delivers the shared store's announcements of
// changed keys to a tier (see LocalTier). Its parts add themselves to
// tier.down until they are subscribed.
type invalidationChannel interface {
	// wait returns once every part has been subscribed once, or an error
	// when the server refuses the subscription or ctx ends first.
	wait(ctx context.Context) error
	close()
}

// localChannelSource is implemented by shared stores that announce the
// changes of their keys.
type localChannelSource interface {
	localChannel(t *LocalTier) (invalidationChannel, error)
}

// NewLocalTier returns a tier in front of shared, which it owns: Close
// closes both. It does not contact the server; [Ping] waits until the
// invalidation connection is up. shared must not be an in-process store
// (memory, null) or another tier.
func NewLocalTier(shared Store, cfg LocalConfig) (*LocalTier, error) {
	switch shared.(type) {
	case nil:
		return nil, errors.New("stores: local tier: no shared store")
	case *Memory, *Null:
		return nil, fmt.Errorf("stores: local tier: %T already lives in the process", shared)
	case *LocalTier:
		return nil, errors.New("stores: local tier: the shared store is a local tier already")
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("stores: local tier: MaxBytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("stores: local tier: MaxAge %v is negative", cfg.MaxAge)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultLocalMaxBytes
	}
	// Reading the clock on every hit costs as much as the rest of the
	// lookup; a copy may then be served up to localClockResolution past
	// its expiry.
	clock := otter.NewCoarseClock(localClockResolution)
	mem, err := NewMemory(MemoryConfig{MaxBytes: cfg.MaxBytes, clock: clock})
	if err != nil {
		clock.Stop()
		return nil, fmt.Errorf("stores: local tier: %s", strings.TrimPrefix(err.Error(), "stores: memory: "))
	}
	t := &LocalTier{shared: shared, mem: mem, clock: clock, maxAge: cfg.MaxAge, logger: cfg.Logger, seed: maphash.MakeSeed()}
	t.expiry, _ = shared.(expiringReader)
	if src, ok := shared.(localChannelSource); ok {
		ch, err := src.localChannel(t)
		if err != nil {
			_ = mem.Close()
			clock.Stop()
			return nil, err
		}
		t.channel = ch
	} else if t.maxAge == 0 {
		t.maxAge = DefaultLocalMaxAge
	}
	return t, nil
}

// Shared returns the store the tier is in front of.
func (t *LocalTier) Shared() Store { return t.shared }

// Stats implements [StatsReporter]: what the tier holds in the process
// (its copies, counted as [MemoryConfig.MaxBytes] counts entries, and
// the copies it evicted to make room). echocache's Stats and the
// Prometheus collector report it as the store's.
func (t *LocalTier) Stats() StoreStats { return t.mem.Stats() }

// LocalStats returns the tier's counters.
func (t *LocalTier) LocalStats() LocalStats {
	return LocalStats{
		Hits: t.hits.Load(), Misses: t.misses.Load(),
		Invalidations: t.invalidations.Load(), Flushes: t.flushes.Load(),
		Coherent: t.down.Load() == 0,
	}
}

func (t *LocalTier) logf(format string, args ...any) {
	if t.logger != nil {
		t.logger.Warnf("stores: local tier: "+format, args...)
	}
}

func (t *LocalTier) check(ctx context.Context) error {
	if t.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (t *LocalTier) stripe(key string) *atomic.Uint64 {
	return &t.stripes[maphash.String(t.seed, key)%localStripes]
}

// ticket is what a read notes before asking the shared store, so that it
// fills the tier only if nothing changed meanwhile.
type ticket struct {
	stripe *atomic.Uint64
	count  uint64
	epoch  uint64
	ok     bool // the tier was coherent
}

func (t *LocalTier) ticket(key string) ticket {
	if t.down.Load() != 0 {
		return ticket{}
	}
	s := t.stripe(key)
	return ticket{stripe: s, count: s.Load(), epoch: t.epoch.Load(), ok: true}
}

func (t *LocalTier) valid(tk ticket) bool {
	return tk.ok && t.down.Load() == 0 && t.epoch.Load() == tk.epoch && tk.stripe.Load() == tk.count
}

// fill keeps a copy of v under key, unless the key or the tier changed
// since tk was taken.
func (t *LocalTier) fill(tk ticket, key string, e expiring) {
	if !t.valid(tk) {
		return
	}
	life := NoExpiry
	switch {
	case !e.known:
		if t.maxAge == 0 {
			return // nothing bounds a copy of unknown lifetime
		}
	case e.left == NoExpiry:
	case e.left > 0:
		life = e.left
	default:
		return // the entry expires now
	}
	if t.maxAge > 0 && (life == NoExpiry || life > t.maxAge) {
		life = t.maxAge
	}
	// A compressed entry is kept decoded: its readers keep what they
	// decode beside the copy (its memo), and MaxBytes must count those
	// bytes, which compression does not bound. An entry that decodes to
	// more than the tier holds, or does not decode, is not kept (the
	// caller, which got the shared bytes, judges those).
	v, err := record.Decompress(e.v, int(min(t.mem.maxBytes, math.MaxInt32)))
	if err != nil {
		return
	}
	ent, err := t.mem.entry(key, v, life)
	if err != nil {
		return // larger than the tier
	}
	t.mem.cache.Set(key, ent)
	// An invalidation that came between the check and the write above
	// moved the counter after it; the copy must not outlive it.
	if !t.valid(tk) {
		t.mem.cache.Invalidate(key)
	}
}

// invalidate drops the copy of key: the counter moves first, so that a
// read in flight does not fill the tier with what it got, and again after,
// so that a stamp taken in between (watch) does not vouch for the copy
// dropped.
func (t *LocalTier) invalidate(key string) {
	s := t.stripe(key)
	s.Add(1)
	t.mem.cache.Invalidate(key)
	s.Add(1)
	t.invalidations.Add(1)
}

func (t *LocalTier) invalidateMany(keys []string) {
	for _, k := range keys {
		t.invalidate(k)
	}
}

// flush drops every copy; the epoch moves before and after (see
// invalidate).
func (t *LocalTier) flush() {
	t.epoch.Add(1)
	t.mem.cache.InvalidateAll()
	t.epoch.Add(1)
	t.flushes.Add(1)
}

// partDown marks one part of the channel not subscribed: the tier stops
// answering from memory and drops every copy.
func (t *LocalTier) partDown() {
	t.down.Add(1)
	t.flush()
}

// partUp marks one part of the channel subscribed again: what changed
// while it was down was not announced, so every copy is dropped first.
func (t *LocalTier) partUp() {
	t.flush()
	t.down.Add(-1)
}

// lookup returns the local copy of key, when the tier can answer.
func (t *LocalTier) lookup(key string) (memEntry, bool) {
	if t.down.Load() != 0 {
		return memEntry{}, false
	}
	e, ok := t.mem.read(key)
	if ok {
		t.hits.Add(1)
	}
	return e, ok
}

// viewLocal returns the local copy of key without copying it, and its
// memo, when the tier can answer now (a copy is present and the
// invalidation connection is up); ok is false otherwise, and the caller
// asks Get. The slice is shared: it must never be modified. echocache
// uses it (through internal/inproc's RegisterNear) to serve a local hit
// with no store timeout and no breaker, to decode a typed value or a
// memoize version without copying it, and to decode a page's copy once.
func (t *LocalTier) viewLocal(key string) (v []byte, memo *inproc.Memo, ok bool) {
	if t.closed.Load() {
		return nil, nil, false
	}
	e, ok := t.lookup(key)
	if !ok {
		return nil, nil, false
	}
	return e.val, e.memo, true
}

// watch implements inproc.Near.Watch: in front of a store that announces
// every change (redis), a stamp of key's counter and of the flushes, while
// the tier is coherent.
func (t *LocalTier) watch(key string) (inproc.Stamp, bool) {
	if t.channel == nil {
		return inproc.Stamp{}, false // another process's change goes unseen
	}
	s := t.stripe(key)
	st := inproc.Stamp{Counter: s, Epoch: t.epoch.Load(), Count: s.Load()}
	return st, t.down.Load() == 0 && !t.closed.Load()
}

// unchanged implements inproc.Near.Unchanged: nothing moved key's counter
// or flushed the tier since s, and the tier is coherent now. invalidate
// and flush move their counters both before and after they drop copies,
// so a copy read after s was taken and dropped since has moved one.
func (t *LocalTier) unchanged(s inproc.Stamp) bool {
	return s.Counter.Load() == s.Count && t.epoch.Load() == s.Epoch && t.down.Load() == 0 && !t.closed.Load()
}

func init() {
	inproc.RegisterNear(func(s any) (inproc.Near, bool) {
		if t, ok := s.(*LocalTier); ok {
			return inproc.Near{View: t.viewLocal, Watch: t.watch, Unchanged: t.unchanged}, true
		}
		return inproc.Near{}, false
	})
}

// readShared reads key from the shared store, with its remaining TTL when
// the store tells it.
func (t *LocalTier) readShared(ctx context.Context, key string) (expiring, error) {
	if t.expiry != nil {
		return t.expiry.getExpiring(ctx, key)
	}
	v, err := t.shared.Get(ctx, key)
	return expiring{v: v}, err
}

// Get implements [Store]: from the process when it can, otherwise from the
// shared store, keeping a copy.
func (t *LocalTier) Get(ctx context.Context, key string) ([]byte, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if e, ok := t.lookup(key); ok {
		return clone(e.val), nil
	}
	t.misses.Add(1)
	tk := t.ticket(key)
	e, err := t.readShared(ctx, key)
	if err != nil {
		return nil, err
	}
	t.fill(tk, key, e)
	return e.v, nil
}

// GetMany implements [MultiGetter]: the keys the process holds are answered
// from it, the others with one call to the shared store. With an error
// wrapping ErrNodeDown the map holds the values that were read.
func (t *LocalTier) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	var rest []string
	for i, k := range keys {
		if e, ok := t.lookup(k); ok {
			out[k] = clone(e.val)
		} else if rest == nil {
			rest = make([]string, 0, len(keys)-i)
			rest = append(rest, k)
		} else {
			rest = append(rest, k)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	t.misses.Add(int64(len(rest)))
	tks := make([]ticket, len(rest))
	for i, k := range rest {
		tks[i] = t.ticket(k)
	}
	var err error
	if t.expiry != nil {
		var got map[string]expiring
		got, err = t.expiry.getManyExpiring(ctx, rest)
		for i, k := range rest {
			if e, ok := got[k]; ok {
				out[k] = e.v
				t.fill(tks[i], k, e)
			}
		}
	} else {
		var got map[string][]byte
		got, err = GetMany(ctx, t.shared, rest)
		for i, k := range rest {
			if v, ok := got[k]; ok {
				out[k] = v
				t.fill(tks[i], k, expiring{v: v})
			}
		}
	}
	if err != nil && !errors.Is(err, ErrNodeDown) {
		return nil, err
	}
	return out, err
}

// Set implements [Store].
func (t *LocalTier) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	err := t.shared.Set(ctx, key, value, ttl)
	t.invalidate(key)
	return err
}

// Add implements [Store].
func (t *LocalTier) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := t.check(ctx); err != nil {
		return false, err
	}
	ok, err := t.shared.Add(ctx, key, value, ttl)
	if ok || err != nil {
		t.invalidate(key)
	}
	return ok, err
}

// Delete implements [Store].
func (t *LocalTier) Delete(ctx context.Context, key string) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	err := t.shared.Delete(ctx, key)
	t.invalidate(key)
	return err
}

// SetMany implements [MultiSetter].
func (t *LocalTier) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	err := SetMany(ctx, t.shared, items, ttl)
	for k := range items {
		t.invalidate(k)
	}
	return err
}

// DeleteMany implements [MultiDeleter].
func (t *LocalTier) DeleteMany(ctx context.Context, keys []string) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	err := DeleteMany(ctx, t.shared, keys)
	t.invalidateMany(keys)
	return err
}

// Incr implements [Incrementer].
func (t *LocalTier) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := t.check(ctx); err != nil {
		return 0, err
	}
	n, err := Incr(ctx, t.shared, key, delta)
	t.invalidate(key)
	return n, err
}

// Clear implements [Store]: it clears the shared store's namespace and
// drops every local copy (other processes' tiers drop theirs as the
// removals are announced, or within MaxAge).
func (t *LocalTier) Clear(ctx context.Context) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	err := t.shared.Clear(ctx)
	t.flush()
	return err
}

// Ping implements [Pinger]: it pings the shared store and, in front of
// redis, waits until the invalidation connections are subscribed (until
// then the tier answers nothing from memory). A server that refuses
// CLIENT TRACKING (Redis before 6, an ACL without @connection) is an
// error that names it.
func (t *LocalTier) Ping(ctx context.Context) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	if err := Ping(ctx, t.shared); err != nil {
		return err
	}
	if t.channel != nil {
		return t.channel.wait(ctx)
	}
	return nil
}

// Close stops the invalidation connections, drops every copy and closes
// the shared store. It is safe to call twice.
func (t *LocalTier) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	if t.channel != nil {
		t.channel.close()
	}
	_ = t.mem.Close()
	t.clock.Stop()
	return t.shared.Close()
}

var _ interface {
	Store
	MultiGetter
	MultiSetter
	MultiDeleter
	Incrementer
	Pinger
	StatsReporter
} = (*LocalTier)(nil)

// openLocal opens the store of u through open, in front of which the
// local and local_max_age parameters, when present, put a local tier:
//
//	redis://127.0.0.1:6379/0?prefix=app:&local=32MiB
//	memcached://127.0.0.1:11211?prefix=app:&local=32MiB&local_max_age=2s
//
// local is the tier's size (LocalConfig.MaxBytes), local_max_age its
// MaxAge. Every scheme but memory and null accepts them.
func openLocal(ctx context.Context, u *url.URL, open OpenFunc) (Store, error) {
	q, err := url.ParseQuery(u.RawQuery)
	_, hasLocal := q["local"]
	_, hasAge := q["local_max_age"]
	if err != nil || !hasLocal && !hasAge {
		return open(ctx, u) // the store names a malformed query
	}
	own := url.Values{}
	for _, name := range []string{"local", "local_max_age"} {
		if vs, ok := q[name]; ok {
			own[name] = vs
			delete(q, name)
		}
	}
	p := NewParams(&url.URL{Scheme: u.Scheme, RawQuery: own.Encode()})
	cfg := LocalConfig{MaxBytes: p.Bytes("local", 0), MaxAge: p.positiveDuration("local_max_age", 0)}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if !hasLocal {
		return nil, fmt.Errorf("stores: %s URL: parameter local_max_age without local (the local tier's size, such as local=32MiB)", u.Scheme)
	}
	if cfg.MaxBytes == 0 {
		return nil, fmt.Errorf(`stores: %s URL: parameter local="%s": want a size above zero, such as 32MiB`, u.Scheme, own.Get("local"))
	}
	switch strings.ToLower(u.Scheme) {
	case "memory", "null":
		return nil, fmt.Errorf("stores: %s URL: parameter local: a %s store already lives in the process", u.Scheme, u.Scheme)
	}
	inner := *u
	inner.RawQuery = q.Encode()
	shared, err := open(ctx, &inner)
	if err != nil {
		return nil, err
	}
	t, err := NewLocalTier(shared, cfg)
	if err != nil {
		_ = shared.Close()
		return nil, err
	}
	return t, nil
}

package stores

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/echocache/echocache/internal/inproc"
)

func init() {
	Register("memory", openMemory)
}

// MemoryConfig configures a [Memory] store.
type MemoryConfig struct {
	// MaxBytes bounds the memory the entries use: keys, values and a fixed
	// per-entry overhead (entryOverhead bytes). A value that alone exceeds
	// it is refused with ErrTooLarge. What readers keep in values' memos
	// (a decoded page, a few hundred bytes) is not counted.
	// Optional. Default value 64 MiB.
	MaxBytes int64

	// MaxEntries bounds the number of entries, Flask-Cache's threshold.
	// Optional. Default value 0 (bounded by MaxBytes alone).
	MaxEntries int

	// DefaultTTL is the lifetime of entries written with ttl == DefaultTTL.
	// Optional. Default value 0 (such entries never expire).
	DefaultTTL time.Duration

	// Prefix is the store's namespace. A Memory store shares nothing with
	// other stores, so it has no effect; it is accepted so that a URL can
	// switch to memory:// by changing its scheme alone.
	// Optional. Default value "".
	Prefix string

	clock otter.Clock // nil: otter's precise clock (a LocalTier gives a coarse one)
}

// DefaultMemoryMaxBytes is the default of [MemoryConfig.MaxBytes].
const DefaultMemoryMaxBytes = 64 << 20

// entryOverhead is what an entry costs besides its key and value bytes: the
// cache node, the hash table slot, and the string and slice headers.
const entryOverhead = 128

// Memory is an in-process store bounded by bytes and by entry count, with a
// TTL per entry. It evicts with W-TinyLFU (otter), which keeps frequently
// used entries over merely recent ones; the policy sees a random one read
// in eight, which ranks keys by use as well as seeing every read and keeps
// most reads to a hash table lookup. It is safe for concurrent use.
//
// Memory copies values on the way in and on the way out, so a caller can
// never change what another caller reads. Like every store, it fails with
// the context's error when ctx is already done (it never blocks, so that is
// the only use it makes of ctx), and with ErrClosed after Close.
type Memory struct {
	cache     *otter.Cache[string, memEntry]
	def       time.Duration
	maxBytes  int64
	closed    atomic.Bool
	evictions atomic.Uint64 // entries dropped to make room (Stats)
}

// memEntry is the cached value: the bytes and how long they live.
type memEntry struct {
	val  []byte
	memo *inproc.Memo // nil for a value made by Incr
	// ttl is the lifetime from the write: 0 means never expire, keepTTL
	// keeps the deadline of the entry it replaces (Incr).
	ttl time.Duration
}

const keepTTL time.Duration = -1

// NewMemory returns a Memory store.
//
// URL form (every parameter optional; max_entries=0 means no count bound):
//
//	memory://?max_bytes=64MiB&max_entries=10000&default_ttl=5m&prefix=app:
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("stores: memory: MaxBytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("stores: memory: MaxEntries %d is negative", cfg.MaxEntries)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMemoryMaxBytes
	}
	if cfg.MaxBytes < entryOverhead {
		return nil, fmt.Errorf("stores: memory: MaxBytes %d is below the %d bytes one entry costs", cfg.MaxBytes, entryOverhead)
	}
	// otter takes one maximum, so both bounds become one: every entry
	// weighs at least MaxBytes/MaxEntries (rounded up), so MaxBytes of
	// weight holds at most MaxEntries entries, and at least its size in
	// bytes, so it holds at most MaxBytes bytes.
	var minWeight int64 = 1
	if cfg.MaxEntries > 0 {
		minWeight = (cfg.MaxBytes + int64(cfg.MaxEntries) - 1) / int64(cfg.MaxEntries)
	}
	m := &Memory{def: cfg.DefaultTTL, maxBytes: cfg.MaxBytes}
	cache, err := otter.New(&otter.Options[string, memEntry]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher: func(key string, e memEntry) uint32 {
			return uint32(min(max(entrySize(key, e.val), minWeight), math.MaxUint32))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memEntry]) time.Duration {
			switch {
			case e.Value.ttl > 0:
				return e.Value.ttl
			case e.Value.ttl == keepTTL:
				// The time the replaced entry had left. (Incr creates
				// absent entries with ttl 0, never keepTTL.)
				return e.ExpiresAfter()
			default:
				return time.Duration(math.MaxInt64)
			}
		}),
		// Under the entry's bucket lock, so only a counter.
		OnAtomicDeletion: func(e otter.DeletionEvent[string, memEntry]) {
			if e.Cause == otter.CauseOverflow {
				m.evictions.Add(1)
			}
		},
		Logger: &otter.NoopLogger{},
		Clock:  cfg.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("stores: memory: %w", err)
	}
	m.cache = cache
	return m, nil
}

// Stats implements [StatsReporter]. It first applies the writes the
// eviction policy has not processed yet (otter does that in the
// background), so that Bytes and Evictions are current: call it for
// metrics, not on every request. With MaxEntries set, each entry counts
// for at least MaxBytes/MaxEntries bytes (that is how both bounds hold),
// so Bytes reaches MaxBytes when either bound is reached.
func (m *Memory) Stats() StoreStats {
	m.cache.CleanUp()
	return StoreStats{
		Entries:   int64(m.cache.EstimatedSize()),
		Bytes:     int64(m.cache.WeightedSize()),
		MaxBytes:  m.maxBytes,
		Evictions: m.evictions.Load(),
	}
}

func entrySize(key string, val []byte) int64 {
	return int64(len(key)) + int64(len(val)) + entryOverhead
}

func openMemory(_ context.Context, u *url.URL) (Store, error) {
	if err := noLocation(u); err != nil {
		return nil, err
	}
	p := NewParams(u)
	cfg := MemoryConfig{
		MaxBytes:   p.bytesIn("max_bytes", DefaultMemoryMaxBytes, 1, math.MaxInt64),
		MaxEntries: p.Int("max_entries", 0),
		DefaultTTL: p.Duration("default_ttl", 0),
		Prefix:     p.String("prefix", ""),
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		return nil, errors.New(`stores: memory URL: parameter max_bytes="0": want a size above zero`)
	}
	return NewMemory(cfg)
}

func (m *Memory) check(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Get returns a copy of the value under key, or ErrNotFound.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	e, ok := m.read(key)
	if !ok {
		return nil, ErrNotFound
	}
	return clone(e.val), nil
}

// readSample is how many reads the eviction policy sees one of. A read it
// sees goes through otter's read buffer, whose draining is handed to a new
// goroutine each time the buffer fills; a quiet read is only the hash table
// lookup. The policy's frequency sketch compares keys with one another, so
// seeing a uniform sample of the reads ranks them as seeing all would, and a
// key read often is still seen often.
const readSample = 8

// read returns the entry under key, showing one read in readSample to the
// eviction policy.
func (m *Memory) read(key string) (memEntry, bool) {
	if rand.Uint32()%readSample == 0 {
		return m.cache.GetIfPresent(key)
	}
	e, ok := m.cache.GetEntryQuietly(key)
	return e.Value, ok
}

// clone copies b; an empty b gives an empty, non-nil slice without allocating.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// entry builds the entry for a write, or ErrTooLarge.
func (m *Memory) entry(key string, value []byte, ttl time.Duration) (memEntry, error) {
	if n := entrySize(key, value); n > m.maxBytes || n > math.MaxUint32 {
		return memEntry{}, fmt.Errorf("stores: memory: entry of %d bytes exceeds the limit of %d: %w", n, min(m.maxBytes, math.MaxUint32), ErrTooLarge)
	}
	return memEntry{val: clone(value), memo: new(inproc.Memo), ttl: resolveTTL(ttl, m.def)}, nil
}

// Set stores a copy of value under key. A value too large for MaxBytes is
// refused with ErrTooLarge and removes the key's previous value.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	e, err := m.entry(key, value, ttl)
	if err != nil {
		m.cache.Invalidate(key)
		return err
	}
	m.cache.Set(key, e)
	return nil
}

// Add stores a copy of value under key if the key is absent or expired.
func (m *Memory) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	e, err := m.entry(key, value, ttl)
	if err != nil {
		return false, err
	}
	_, added := m.cache.SetIfAbsent(key, e)
	return added, nil
}

// Delete removes key.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	m.cache.Invalidate(key)
	return nil
}

// GetMany returns copies of the values of the keys that are present.
func (m *Memory) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		if e, ok := m.read(k); ok {
			out[k] = clone(e.val)
		}
	}
	return out, nil
}

// SetMany stores copies of every item. If one is too large, none is stored
// and every key of items is removed.
func (m *Memory) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	entries := make(map[string]memEntry, len(items))
	for k, v := range items {
		e, err := m.entry(k, v, ttl)
		if err != nil {
			for k := range items {
				m.cache.Invalidate(k)
			}
			return err
		}
		entries[k] = e
	}
	for k, e := range entries {
		m.cache.Set(k, e)
	}
	return nil
}

// DeleteMany removes every key.
func (m *Memory) DeleteMany(ctx context.Context, keys []string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	for _, k := range keys {
		m.cache.Invalidate(k)
	}
	return nil
}

// Incr adds delta to the decimal integer under key, atomically, keeping the
// entry's expiry. An absent key is created holding delta, with no expiry.
func (m *Memory) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := m.check(ctx); err != nil {
		return 0, err
	}
	var (
		n      int64
		incErr error
	)
	m.cache.Compute(key, func(old memEntry, found bool) (memEntry, otter.ComputeOp) {
		if !found {
			n = delta
			return memEntry{val: strconv.AppendInt(nil, n, 10)}, otter.WriteOp
		}
		n, incErr = addCounter(old.val, delta)
		if incErr != nil {
			return old, otter.CancelOp
		}
		return memEntry{val: strconv.AppendInt(nil, n, 10), ttl: keepTTL}, otter.WriteOp
	})
	if incErr != nil {
		return 0, fmt.Errorf("stores: memory: incr %q: %w", key, incErr)
	}
	return n, nil
}

// Clear removes every entry.
func (m *Memory) Clear(ctx context.Context) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	m.cache.InvalidateAll()
	return nil
}

// Close drops every entry, stops the cache's background work and makes later
// calls fail with ErrClosed. It is safe to call twice.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.cache.InvalidateAll()
	m.cache.StopAllGoroutines()
	return nil
}

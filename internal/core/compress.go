package core

import (
	"context"
	"maps"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/stores"
)

// Compression of the records written to a networked store: every write
// (Set, SetMany, Add) compresses a record of at least the threshold
// (record.Compress), and every read (Get, GetMany, View) opens what it
// finds with record.Decompress, so that every feature reads compressed
// and plain entries alike, written before or after compression was turned
// on, by any of the processes sharing the store.

const (
	// DefaultCompressMinSize is the smallest record compressed when
	// Config.CompressMinSize is zero: 4 KiB. Below it, S2 saves a KiB or
	// two per entry (2× on a 2 KiB HTML page), which few stores miss.
	DefaultCompressMinSize = 4 << 10

	// MaxCompressSize is the largest record compressed, 32 MiB (about the
	// memcached store's default MaxValueSize, 33,538,048 bytes), and so
	// the most a compressed entry may decode to: one that says it holds
	// more is refused unread, as a corrupt entry. Larger records are
	// stored as they are.
	MaxCompressSize = 32 << 20
)

// compressMin returns the threshold for a store: 0 (no compression) for
// one in the process, where compressing costs CPU on every read and saves
// nothing that leaves the process, and when Config.CompressMinSize is
// negative.
func (c *Cache) compressMin(local bool) int {
	switch n := c.cfg.CompressMinSize; {
	case local || n < 0:
		return 0
	case n == 0:
		return DefaultCompressMinSize
	default:
		return n
	}
}

// compress returns value compressed when the store wants it compressed
// (record.Compress keeps it as it is when it is not a record, or
// compresses poorly).
func (c *Cache) compress(value []byte) []byte {
	r := c.store.Load()
	if r == nil || r.compress == 0 || len(value) < r.compress || len(value) > MaxCompressSize {
		return value
	}
	return record.Compress(value)
}

// compressAll is compress for SetMany: it returns items itself when
// nothing is compressed, else a new map. Items that share their bytes
// (a page's records) are compressed once.
func (c *Cache) compressAll(items map[string][]byte) map[string][]byte {
	if r := c.store.Load(); r == nil || r.compress == 0 {
		return items
	}
	var out map[string][]byte
	var src, dst []byte // the last value compressed, and what it became
	for k, v := range items {
		var z []byte
		if len(src) > 0 && same(v, src) {
			z = dst
		} else if z = c.compress(v); !same(z, v) {
			src, dst = v, z
		}
		if out == nil && !same(z, v) {
			out = maps.Clone(items) // the values before k were kept as they are
		}
		if out != nil {
			out[k] = z
		}
	}
	if out == nil {
		return items
	}
	return out
}

// same reports whether a and b are the same bytes in memory.
func same(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// decompress returns the record that value, read under key, holds. A
// compressed entry that does not decode (damaged, forged, or expanding
// past MaxCompressSize) is logged and deleted, like every corrupt entry,
// and is a miss.
func (c *Cache) decompress(ctx context.Context, key string, value []byte) ([]byte, error) {
	if !record.Is(value, record.Compressed) {
		return value, nil
	}
	rec, err := record.Decompress(value, MaxCompressSize)
	if err != nil {
		c.DropCorrupt(ctx, "compressed entry", key, err)
		return nil, stores.ErrNotFound
	}
	return rec, nil
}

// viewed returns what View returns for the bytes v of key that an
// in-process store or tier shares with every reader, and their memo (err
// is the read's). A compressed record is decoded once: the memo keeps
// the record it holds, with a memo of its own, which later readers get in
// place of the store's. (The store counts the compressed bytes against its
// bounds; the decoded record lives beside them as long as they do.)
func (c *Cache) viewed(ctx context.Context, key string, v []byte, memo *inproc.Memo, err error) ([]byte, *inproc.Memo, error) {
	if err != nil || !record.Is(v, record.Compressed) {
		return v, memo, err
	}
	if u, ok := memo.Load().(*unpacked); ok {
		return u.rec, u.memo, nil
	}
	rec, err := c.decompress(ctx, key, v)
	if err != nil || memo == nil {
		return rec, nil, err
	}
	u := &unpacked{rec: rec, memo: new(inproc.Memo)}
	memo.Store(u)
	return u.rec, u.memo, nil
}

// unpacked is what the memo of a compressed record keeps (see viewed).
type unpacked struct {
	rec  []byte
	memo *inproc.Memo
}

// decompressAll is decompress for the values of GetMany, in place.
func (c *Cache) decompressAll(ctx context.Context, values map[string][]byte) {
	var bad []string
	for k, v := range values {
		if !record.Is(v, record.Compressed) {
			continue
		}
		rec, err := record.Decompress(v, MaxCompressSize)
		if err != nil {
			c.stats.Corrupt.Add(1)
			c.Logf("dropping corrupt compressed entry %q: %v", k, err)
			delete(values, k)
			bad = append(bad, k)
			continue
		}
		values[k] = rec
	}
	if len(bad) > 0 {
		_ = c.Delete(context.WithoutCancel(ctx), bad...)
	}
}

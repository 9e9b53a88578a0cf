package stores

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/echocache/echocache/internal/mcbin"
)

// Values larger than an item.
//
// A value longer than one item holds (MaxItemSize less 512 bytes) is split
// into chunks of that size, stored under fresh keys of their own on the
// server that holds the entry, and the entry's key gets a manifest: an item
// flagged mcManifestFlag that records the value's length, the number and
// size of its chunks, an xxhash64 checksum of the whole value, and a random
// write ID from which the chunks' keys are derived (chunkKey). The chunks
// are written first, the manifest last, so a manifest never names chunks
// that were not all stored.
//
// A read is all or nothing: it fetches the manifest with the entry, then
// every chunk in one round trip, and returns the value only when every
// chunk is there with its length and the whole matches the checksum.
// Anything else (a chunk evicted or deleted, cut short, of another write,
// a manifest that is not one) is a miss, never partial or foreign bytes.
// Chunk keys are never written twice: a writer replacing a chunked value
// writes new chunks and then a new manifest, so a reader racing it reads
// the old value whole, the new one whole, or a miss. Chunks of replaced or
// deleted values are left to expire with their entry's TTL or to
// memcached's LRU.
//
// Flask-Caching's SpreadSASLMemcachedCache splits values too (into at most
// 32 chunks), but joins whatever chunks come back: a missing chunk or the
// tail of an older, longer value gives corrupt data.
const (
	// DefaultMemcachedMaxChunks is how many items a value may span by
	// default: the default largest value is DefaultMemcachedMaxChunks
	// times (MaxItemSize - 512), 32 × 1,048,064 = 33,538,048 bytes
	// (about 32 MiB) with memcached's default 1 MiB items.
	DefaultMemcachedMaxChunks = 32
	// maxMemcachedChunks bounds MaxValueSize: a value spans at most this
	// many items.
	maxMemcachedChunks = 1024
)

// The manifest, little-endian: magic, version, length, chunk count, chunk
// size, checksum, write ID. The magic byte is not a digit, so memcached's
// incr never takes a manifest for a counter.
const (
	manifestMagic   = 'E'
	manifestVersion = 1
	manifestIDLen   = 16
	manifestLen     = 2 + 8 + 4 + 4 + 8 + manifestIDLen
)

// manifest describes a chunked value.
type manifest struct {
	length uint64
	chunks uint32
	size   uint32
	sum    uint64
	id     [manifestIDLen]byte
}

func (mf *manifest) encode() []byte {
	b := make([]byte, 0, manifestLen)
	b = append(b, manifestMagic, manifestVersion)
	b = binary.LittleEndian.AppendUint64(b, mf.length)
	b = binary.LittleEndian.AppendUint32(b, mf.chunks)
	b = binary.LittleEndian.AppendUint32(b, mf.size)
	b = binary.LittleEndian.AppendUint64(b, mf.sum)
	return append(b, mf.id[:]...)
}

// decodeManifest reads a manifest and checks that it describes a value the
// store could have written: at most maxValue bytes, in chunks of at most
// maxChunk bytes, as many as the length needs.
func decodeManifest(b []byte, maxValue, maxChunk int) (manifest, bool) {
	var mf manifest
	if len(b) != manifestLen || b[0] != manifestMagic || b[1] != manifestVersion {
		return mf, false
	}
	mf.length = binary.LittleEndian.Uint64(b[2:])
	mf.chunks = binary.LittleEndian.Uint32(b[10:])
	mf.size = binary.LittleEndian.Uint32(b[14:])
	mf.sum = binary.LittleEndian.Uint64(b[18:])
	copy(mf.id[:], b[26:])
	if mf.size == 0 || int64(mf.size) > int64(maxChunk) || mf.length > uint64(maxValue) ||
		mf.chunks == 0 || mf.chunks > maxMemcachedChunks ||
		uint64(mf.chunks) != (mf.length+uint64(mf.size)-1)/uint64(mf.size) {
		return mf, false
	}
	return mf, true
}

// chunkedItems returns the chunks of value and then its manifest under dk,
// all of generation gen, expiring at exp. value is longer than m.chunkSize.
func (m *Memcached) chunkedItems(gen, dk string, value []byte, exp uint32, now time.Time) []mcbin.Item {
	mf := manifest{length: uint64(len(value)), size: uint32(m.chunkSize), sum: xxhash.Sum64(value)}
	mf.chunks = uint32((len(value) + m.chunkSize - 1) / m.chunkSize)
	_, _ = rand.Read(mf.id[:])
	flags := expiryFlags(exp, now)
	items := make([]mcbin.Item, 0, mf.chunks+1)
	for i := 0; i*m.chunkSize < len(value); i++ {
		part := value[i*m.chunkSize : min((i+1)*m.chunkSize, len(value))]
		items = append(items, mcbin.Item{Key: m.chunkKey(gen, mf.id[:], i), Value: part, Flags: flags, Expiration: exp})
	}
	return append(items, mcbin.Item{Key: dk, Value: mf.encode(), Flags: flags | mcManifestFlag, Expiration: exp})
}

// readChunked reads the value a manifest of generation gen on s describes.
// It returns false, with no error, when the value cannot be read whole.
func (m *Memcached) readChunked(ctx context.Context, s *mcServer, gen string, b []byte) ([]byte, bool, error) {
	mf, ok := decodeManifest(b, m.maxValue, m.chunkSize)
	if !ok {
		m.logf("stores: memcached %s: an entry flagged as chunked holds no valid manifest; read as a miss", s.addr)
		return nil, false, nil
	}
	keys := make([]string, mf.chunks)
	for i := range keys {
		keys[i] = m.chunkKey(gen, mf.id[:], i)
	}
	parts := make([]mcbin.Item, mf.chunks)
	if err := m.usable(s); err != nil {
		return nil, false, err
	}
	t0 := time.Now()
	err := s.node.getMulti(ctx, keys, parts)
	m.observe(ctx, s, t0, err)
	if err != nil {
		return nil, false, err
	}
	last := int(mf.length) - (int(mf.chunks)-1)*int(mf.size)
	for i, p := range parts {
		want := int(mf.size)
		if i == len(parts)-1 {
			want = last
		}
		if p.Key == "" || len(p.Value) != want {
			return nil, false, nil // evicted, deleted, or not ours: a miss
		}
	}
	value := make([]byte, 0, mf.length)
	for _, p := range parts {
		value = append(value, p.Value...)
	}
	if xxhash.Sum64(value) != mf.sum {
		m.logf("stores: memcached %s: a chunked entry's checksum does not match its chunks; read as a miss", s.addr)
		return nil, false, nil
	}
	return value, true, nil
}

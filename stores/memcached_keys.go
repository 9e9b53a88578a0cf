package stores

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// The keys the store writes on a server, all under the namespace's prefix:
//
//	prefix + "gen@" + 16 hex digits       a server's generation (memcached_gen.go)
//	prefix + gen + ":" + key              an entry (or the manifest of a chunked one)
//	prefix + gen + ":#" + 64 hex digits   an entry whose key memcached cannot take
//	prefix + gen + ":#c" + 32 hex + ":" + n  chunk n of a chunked value (memcached_chunks.go)
//
// gen is a decimal number, so a generation key ("gen@" follows the prefix)
// never looks like an entry, and the part after gen+":" tells entries,
// hashed entries and chunks apart: a caller's key that starts with '#' is
// always hashed, and 'c' is not a hex digit.
const (
	// maxMemcachedPrefix keeps prefix + generation + hashed key under
	// memcached's 250-byte key limit.
	maxMemcachedPrefix = 128
	// hashMarker starts the part of a key that is a hash of the caller's
	// key. A caller's key that starts with it is always hashed, so a plain
	// key never looks like a hashed one.
	hashMarker = '#'
	// genMarker follows the prefix in a generation key.
	genMarker = "gen@"
)

// legalMemcachedKey reports whether k can be sent as a memcached key over
// either protocol: at most 250 bytes, no spaces or control bytes (the
// ASCII protocol's rule; the binary one takes any bytes).
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
// Two different keys never map to one.
func (m *Memcached) dataKey(gen, key string) string {
	k := m.prefix + gen + ":" + key
	if (key == "" || key[0] != hashMarker) && legalMemcachedKey(k) {
		return k
	}
	sum := sha256.Sum256([]byte(key))
	return m.prefix + gen + ":" + string(hashMarker) + hex.EncodeToString(sum[:])
}

// genKey returns the key of the generation kept on the server named addr:
// each server has its own, named after it, so that two names of one
// server (as in a test) do not share one.
func genKey(prefix, addr string) string {
	return fmt.Sprintf("%s%s%016x", prefix, genMarker, xxhash.Sum64String(addr))
}

// chunkKey returns the key of chunk i of the chunked value written as id,
// in generation gen.
func (m *Memcached) chunkKey(gen string, id []byte, i int) string {
	b := make([]byte, 0, len(m.prefix)+len(gen)+3+2*len(id)+1+4)
	b = append(b, m.prefix...)
	b = append(b, gen...)
	b = append(b, ":#c"...)
	b = hex.AppendEncode(b, id)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(i), 10)
	return string(b)
}

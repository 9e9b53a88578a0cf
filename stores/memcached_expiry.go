package stores

import (
	"math"
	"time"
)

// memcachedRelativeLimit is the longest exptime memcached reads as relative
// seconds; longer values are absolute Unix times (memcached
// doc/protocol.txt, "Expiration times").
const memcachedRelativeLimit = 30 * 24 * 60 * 60

// The flags of every item the store writes say what the item is and when
// it expires, so that a compare-and-swap can write an item back with the
// expiry it had: Incr must keep it, and the binary protocol, the only one
// a SASL server speaks, cannot read an item's remaining TTL (the ASCII meta
// commands can, but not over SASL). Bit 31 marks the manifest of a chunked
// value (memcached_chunks.go); bits 0-30 hold the absolute Unix time the
// item expires, in seconds, or 0 for an item without expiry. memcached
// keeps its own expiry in 32 bits too, so the two agree until 2038.
const (
	mcManifestFlag uint32 = 1 << 31
	mcExpiryMask   uint32 = 1<<31 - 1
)

// expiration turns a Store ttl into memcached's exptime. memcached counts
// whole seconds on a clock that ticks once a second, so an exptime of n
// seconds lives between n-1 and n seconds; the store rounds ttl up and adds
// one second, so an entry lives at least ttl. Beyond 30 days the exptime is
// an absolute Unix time; one past 2038 (int32) becomes "never expires".
func (m *Memcached) expiration(ttl time.Duration, now time.Time) uint32 {
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
		return uint32(secs)
	}
	abs := now.Unix() + secs
	if abs > math.MaxInt32 || abs < 0 {
		return 0
	}
	return uint32(abs)
}

// expiryFlags returns the flags of a plain item written at now with
// memcached exptime exp: the absolute time it expires.
func expiryFlags(exp uint32, now time.Time) uint32 {
	if exp == 0 {
		return 0
	}
	abs := int64(exp)
	if abs <= memcachedRelativeLimit {
		abs += now.Unix()
	}
	if abs > int64(mcExpiryMask) {
		return 0
	}
	return uint32(abs)
}

// keepExpiration returns the exptime that gives an item rewritten at now
// the expiry its flags record: 0 for none; at least one second for an item
// about to expire (memcached counts whole seconds, and an exptime of 0
// would mean never); an absolute time beyond 30 days.
func keepExpiration(flags uint32, now time.Time) uint32 {
	abs := int64(flags & mcExpiryMask)
	if abs == 0 {
		return 0
	}
	left := abs - now.Unix()
	switch {
	case left <= 0:
		return 1
	case left <= memcachedRelativeLimit:
		return uint32(left)
	}
	return uint32(abs)
}

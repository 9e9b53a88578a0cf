package stores

import (
	"context"
	"errors"
	"time"
)

// A local tier in front of memcached hears of no other process's change
// (memcached announces nothing), so a copy lives at most MaxAge
// (DefaultLocalMaxAge). It never outlives its entry either: the store
// writes the absolute time each item expires in its flags
// (memcached_expiry.go), which the tier reads with the value at no cost.

// getExpiring implements expiringReader: Get, with the time the entry has
// left as its flags record it.
func (m *Memcached) getExpiring(ctx context.Context, key string) (expiring, error) {
	v, exp, err := m.get(ctx, key)
	if err != nil {
		return expiring{}, err
	}
	return memcachedExpiring(v, exp, time.Now()), nil
}

// getManyExpiring implements expiringReader: GetMany, with the time each
// entry has left. With an error wrapping ErrNodeDown the map holds the
// values of the servers that answered.
func (m *Memcached) getManyExpiring(ctx context.Context, keys []string) (map[string]expiring, error) {
	out := make(map[string]expiring, len(keys))
	now := time.Now()
	err := m.getMany(ctx, keys, func(k string, v []byte, exp uint32) { out[k] = memcachedExpiring(v, exp, now) })
	if err != nil && !errors.Is(err, ErrNodeDown) {
		return nil, err
	}
	return out, err
}

// memcachedExpiring pairs v with the time its entry has left at now, from
// exp, the absolute time its flags record (Unix seconds, 0 for none).
// memcached's clock ticks once a second and the flags hold whole seconds,
// so the entry may expire up to a second before exp: the copy ends a
// second earlier, and is not kept when that is past. An item written by
// another client, or by a store before flags held expiries, reads as one
// without expiry: its copy lives MaxAge.
func memcachedExpiring(v []byte, exp uint32, now time.Time) expiring {
	if exp == 0 {
		return expiring{v: v, left: NoExpiry, known: true}
	}
	left := time.Unix(int64(exp)-1, 0).Sub(now)
	if left <= 0 {
		return expiring{v: v, known: true} // expires now: no copy
	}
	return expiring{v: v, left: left, known: true}
}

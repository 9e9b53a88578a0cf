package stores

import (
	"context"
	"errors"
	"time"
)

// A local tier in front of the file store hears of no other process's
// change (the directory announces nothing), so a copy lives at most
// MaxAge (DefaultLocalMaxAge). It never outlives its entry either: each
// entry file records the time the entry expires (file_entry.go), in
// nanoseconds, which the tier reads with the value at no cost.

// getExpiring implements expiringReader: Get, with the time the entry has
// left as its file records it.
func (f *File) getExpiring(ctx context.Context, key string) (expiring, error) {
	v, exp, err := f.get(ctx, key)
	if err != nil {
		return expiring{}, err
	}
	return f.expiring(v, exp), nil
}

// getManyExpiring implements expiringReader: GetMany, with the time each
// entry has left.
func (f *File) getManyExpiring(ctx context.Context, keys []string) (map[string]expiring, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]expiring, len(keys))
	for _, k := range keys {
		e, err := f.getExpiring(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = e
	}
	return out, nil
}

// expiring pairs v with the time its entry has left, from exp, the
// expiry its file records (Unix ns, 0 for none). An entry that expires
// now keeps no copy.
func (f *File) expiring(v []byte, exp int64) expiring {
	if exp == 0 {
		return expiring{v: v, left: NoExpiry, known: true}
	}
	left := time.Duration(exp - f.now().UnixNano())
	if left <= 0 {
		return expiring{v: v, known: true}
	}
	return expiring{v: v, left: left, known: true}
}

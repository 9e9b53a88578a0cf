package stores

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The optional interfaces of a Store, and the functions that use them or
// fall back to a Store's own methods.

// MultiGetter is implemented by stores that read many keys in one round
// trip. GetMany returns the values of the keys that are present; missing
// keys are absent from the map, which is not an error. A store spread over
// several servers may return the values of the servers that answered
// together with an error wrapping ErrNodeDown.
type MultiGetter interface {
	GetMany(ctx context.Context, keys []string) (map[string][]byte, error)
}

// MultiSetter is implemented by stores that write many keys in one round
// trip. SetMany stores every item with the same ttl. When it fails, each
// key of items holds its new value or nothing, never its previous value.
type MultiSetter interface {
	SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error
}

// MultiDeleter is implemented by stores that delete many keys in one round
// trip. DeleteMany removes every key; absent keys are not an error.
type MultiDeleter interface {
	DeleteMany(ctx context.Context, keys []string) error
}

// Incrementer is implemented by stores with an atomic counter. Incr adds
// delta (which may be negative) to the decimal integer stored under key and
// returns the new value, keeping the entry's expiry (Redis's INCRBY). An
// absent key is created holding delta, with no expiry.
//
// Every store accepts one counter form, Redis's: an optional '-', then
// decimal digits with no leading zero except the number 0 itself, within
// int64 (-9223372036854775808 to 9223372036854775807), and nothing else.
// "05", "+5", "-0", " 5", "5 ", "" and "18446744073709551615" are not
// counters. A stored value not in that form, or a sum that would leave
// int64, gives ErrNotInteger and the entry is left as it was, expiry
// included. The value written by Incr is in that form: Get after Incr
// returns strconv.FormatInt of the result.
type Incrementer interface {
	Incr(ctx context.Context, key string, delta int64) (int64, error)
}

// Pinger is implemented by stores that talk to a server. Ping checks that
// the server answers and that any credentials are accepted.
type Pinger interface {
	Ping(ctx context.Context) error
}

// GetMany reads keys from s: with one call when s is a [MultiGetter], else
// with one Get per key, stopping at the first error.
func GetMany(ctx context.Context, s Store, keys []string) (map[string][]byte, error) {
	if m, ok := s.(MultiGetter); ok {
		return m.GetMany(ctx, keys)
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := s.Get(ctx, k)
		switch {
		case err == nil:
			out[k] = v
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// SetMany writes items to s: with one call when s is a [MultiSetter], else
// with one Set per item. A Set that fails stops the loop, and the keys not
// written are deleted, so that none keeps the value it was meant to lose
// (see Failed writes in the package doc).
func SetMany(ctx context.Context, s Store, items map[string][]byte, ttl time.Duration) error {
	if m, ok := s.(MultiSetter); ok {
		return m.SetMany(ctx, items, ttl)
	}
	done := make(map[string]bool, len(items))
	for k, v := range items {
		err := s.Set(ctx, k, v, ttl)
		if err == nil {
			done[k] = true
			continue
		}
		for k := range items {
			if !done[k] {
				if derr := s.Delete(context.WithoutCancel(ctx), k); derr != nil && !errors.Is(derr, ErrNotFound) {
					err = fmt.Errorf("%w; removing the previous value of %q: %v", err, k, derr)
				}
			}
		}
		return err
	}
	return nil
}

// DeleteMany removes keys from s: with one call when s is a
// [MultiDeleter], else with one Delete per key, stopping at the first
// error.
func DeleteMany(ctx context.Context, s Store, keys []string) error {
	if m, ok := s.(MultiDeleter); ok {
		return m.DeleteMany(ctx, keys)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// Incr adds delta to the counter under key in s (see [Incrementer]). A
// store without an atomic counter gives an error wrapping
// errors.ErrUnsupported: a Get followed by a Set would lose concurrent
// increments and the entry's expiry.
func Incr(ctx context.Context, s Store, key string, delta int64) (int64, error) {
	if m, ok := s.(Incrementer); ok {
		return m.Incr(ctx, key, delta)
	}
	return 0, fmt.Errorf("stores: %T has no atomic Incr: %w", s, errors.ErrUnsupported)
}

// Ping checks that s can be reached. Stores without a server always answer.
func Ping(ctx context.Context, s Store) error {
	if p, ok := s.(Pinger); ok {
		return p.Ping(ctx)
	}
	return ctx.Err()
}

package stores

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// Incr has Redis's signed 64-bit semantics (INCRBY) and its counter form
// (parseCounter) on memcached, whose own incr is unsigned, wraps around,
// takes "05", "+5" and " 5" as numbers and pads a counter it shrinks in
// place with spaces ("05"+1 reads back "6 "). So the store never sends
// memcached's incr for a caller's counter: it reads the item, checks its
// form, and writes the sum back with a compare-and-swap that keeps the
// entry's flags and the expiry they record (memcached_expiry.go), to the
// second, retrying when another client wrote in between. A refused value is
// left as it was.

// casAttempts bounds the compare-and-swap loop of Incr.
const casAttempts = 1000

// incrOp is Incr, in the current generation of the key's server.
func (m *Memcached) incrOp(ctx context.Context, key string, delta int64) (int64, error) {
	if err := m.check(ctx); err != nil {
		return 0, err
	}
	s := m.pick(key)
	gen, err := m.loadGen(ctx, s)
	if err != nil {
		return 0, m.serverErr("incr", s, nil, err)
	}
	if err := m.usable(s); err != nil {
		return 0, m.serverErr("incr", s, nil, err)
	}
	t0 := time.Now()
	n, err := m.incr(ctx, s, m.dataKey(gen, key), delta, &t0)
	m.observe(ctx, s, t0, err)
	if err != nil {
		if errors.Is(err, ErrNotInteger) {
			return 0, fmt.Errorf("stores: memcached incr: %w", err)
		}
		return 0, m.serverErr("incr", s, nil, err)
	}
	return n, nil
}

// incr adds delta to the counter k on s. t0 is the start of the attempt
// under way, for the breaker: a compare-and-swap loop that waits for other
// writers is not a slow server.
func (m *Memcached) incr(ctx context.Context, s *mcServer, k string, delta int64, t0 *time.Time) (int64, error) {
	return m.casIncr(ctx, s, k, delta, t0)
}

// casIncr adds delta with a read and a compare-and-swap that keeps the
// entry's expiry and flags, retrying when another client wrote in between.
func (m *Memcached) casIncr(ctx context.Context, s *mcServer, k string, delta int64, t0 *time.Time) (int64, error) {
	for attempt := 0; attempt < casAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		*t0 = time.Now()
		it, err := s.node.get(ctx, k)
		if errors.Is(err, errMCMiss) {
			ok, err := s.node.add(ctx, mcbin.Item{Key: k, Value: strconv.AppendInt(nil, delta, 10)})
			if err != nil {
				return 0, err
			}
			if ok {
				return delta, nil
			}
			continue // created by someone else in between
		}
		if err != nil {
			return 0, err
		}
		if it.Flags&mcManifestFlag != 0 {
			return 0, fmt.Errorf("%w: a value of more than one item", ErrNotInteger)
		}
		next, err := addCounter(it.Value, delta)
		if err != nil {
			return 0, err
		}
		err = s.node.set(ctx, mcbin.Item{
			Key:        k,
			Value:      strconv.AppendInt(nil, next, 10),
			Flags:      it.Flags,
			Expiration: keepExpiration(it.Flags, time.Now()),
			CAS:        it.CAS,
		})
		switch {
		case err == nil:
			return next, nil
		case errors.Is(err, errMCExists), errors.Is(err, errMCMiss):
			casBackoff(attempt)
		default:
			return 0, err
		}
	}
	return 0, fmt.Errorf("still contended after %d compare-and-swap attempts", casAttempts)
}

// casBackoff sleeps a random moment that grows with attempt (up to 2ms), so
// that writers contending for one counter stop colliding in lockstep.
func casBackoff(attempt int) {
	limit := time.Duration(min(attempt+1, 20)) * 100 * time.Microsecond
	time.Sleep(rand.N(limit))
}

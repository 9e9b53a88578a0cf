package stores

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// Incr has Redis's signed 64-bit semantics (INCRBY) on memcached's
// unsigned counters. A non-negative delta below nativeIncrMax uses
// memcached's incr, which keeps the item's expiry and flags itself and, on
// the binary protocol, creates a missing counter in the same request.
// Negative values and deltas go through a compare-and-swap loop that
// writes the counter back with the expiry its flags record (see
// memcached_expiry.go), to the second.
const (
	// nativeIncrMax bounds the deltas sent to memcached's incr. Below it, a
	// sum that leaves the int64 range has as many digits as the counter
	// had, so taking the delta back restores the counter byte for byte
	// (memcached pads a counter it shrinks in place with spaces). Larger
	// deltas go through the compare-and-swap loop, which checks first.
	nativeIncrMax = 1 << 59
	// casAttempts bounds the compare-and-swap loop of a negative Incr.
	casAttempts = 1000
)

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
	if delta >= 0 && delta < nativeIncrMax {
		n, err := s.node.incr(ctx, k, uint64(delta), uint64(delta))
		switch {
		case err == nil && n > math.MaxInt64:
			// The counter left the signed range: take the delta back, as
			// Redis would have refused it.
			_, _ = s.node.decr(ctx, k, uint64(delta))
			return 0, fmt.Errorf("%w: incrementing by %d would overflow", ErrNotInteger, delta)
		case err == nil:
			return int64(n), nil
		case !errors.Is(err, errMCNonNumeric):
			return 0, err
		}
		// A negative counter, or not a number: the CAS loop decides.
	}
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
		cur, err := parseCounter(it.Value)
		if err != nil {
			return 0, err
		}
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			return 0, fmt.Errorf("%w: %d%+d would overflow", ErrNotInteger, cur, delta)
		}
		next := cur + delta
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

// parseCounter reads a counter the way Redis does: a decimal int64 in
// canonical form (no sign on positives, no leading zeros or spaces). It
// tolerates the trailing spaces memcached leaves when it shrinks a counter
// in place.
func parseCounter(v []byte) (int64, error) {
	s := strings.TrimRight(string(v), " ")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%w: %.32q", ErrNotInteger, v)
	}
	return n, nil
}

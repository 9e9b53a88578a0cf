package stores

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// Namespace generations, one per server.
//
// memcached cannot list keys, and flush_all would wipe every application on
// a shared server, so each entry's key carries a generation: Clear moves
// it, and entries of older generations are never read again and age out of
// memcached's LRU (the memcached wiki's "namespacing" trick). Each server
// keeps the generation of its own entries, under a key pinned to it
// (genKey), created with an unpredictable start value and no expiry:
//
//   - a server that dies costs only its own keys; the others keep their
//     generations and entries;
//   - a server that restarts empty, or loses its generation to eviction,
//     gets a fresh one the first time it is read, which retires only what
//     it held;
//   - a server that joins or leaves the pool changes nobody else's
//     generation, so the keys that stay on their server stay readable.
//
// Reads learn a server's generation without a round trip of their own: Get
// and GetMany fetch it in the same multi-get as the data keys of the
// generation seen last, and fetch again only when it moved (a Clear by
// another process). Writes that must be exact (Add, Delete, DeleteMany,
// Incr) read it first. Set and SetMany use the generation seen last: a Set
// racing with a Clear from another process may land in the retired
// generation, which reads as if the Set had happened before the Clear.
//
// Clear increments the generation of every server. A server that cannot be
// reached misses the increment: the store remembers it and replays it
// before that server serves anything again in this process (another
// process that could still reach it may read its older entries meanwhile,
// as with any write to a server that is down).

// genFor returns s's generation: the one seen last, or the server's when
// none was seen yet or a Clear of s is pending.
func (m *Memcached) genFor(ctx context.Context, s *mcServer) (string, error) {
	if g := s.gen.Load(); g != nil && !s.clearPending.Load() && !s.owing.Load() {
		return *g, nil
	}
	return m.loadGen(ctx, s)
}

// loadGen reads s's generation from the server, creating it when it is
// missing. A Clear of s that is pending is replayed first, and the
// removals failed writes owe s are made: every operation, exact or not,
// sees the server after them.
func (m *Memcached) loadGen(ctx context.Context, s *mcServer) (string, error) {
	if err := m.usable(s); err != nil {
		return "", err
	}
	if s.owing.Load() {
		t0 := time.Now()
		err := m.payOwed(ctx, s)
		m.observe(ctx, s, t0, err)
		if err != nil {
			return "", err
		}
	}
	if s.clearPending.Load() {
		if err := m.clearServer(ctx, s); err != nil {
			return "", err
		}
		if g := s.gen.Load(); g != nil {
			return *g, nil
		}
	}
	t0 := time.Now()
	it, err := s.node.get(ctx, s.genKey)
	m.observe(ctx, s, t0, err)
	switch {
	case err == nil:
		if g, ok := m.storeGen(s, it.Value); ok {
			return g, nil
		}
		return m.createGen(ctx, s) // not a number: replaced
	case errors.Is(err, errMCMiss):
		return m.createGen(ctx, s)
	}
	return "", err
}

// createGen gives s a generation when it has none, atomically: an Incr by
// 0 that creates the counter with a random start value when it is absent,
// and returns the counter either way. A counter that holds something else
// than a number is overwritten.
func (m *Memcached) createGen(ctx context.Context, s *mcServer) (string, error) {
	return m.bumpGen(ctx, s, 0)
}

// bumpGen adds delta to s's generation (creating it as createGen does) and
// stores the result as the generation seen last. It is refused while s's
// breaker is open, and feeds the breaker.
func (m *Memcached) bumpGen(ctx context.Context, s *mcServer, delta uint64) (string, error) {
	if err := m.usable(s); err != nil {
		return "", err
	}
	t0 := time.Now()
	g, err := m.moveGen(ctx, s, delta)
	m.observe(ctx, s, t0, err)
	return g, err
}

// moveGen is bumpGen without the breaker: the prober uses it on a server
// whose breaker is still open, to replay a Clear before closing it.
func (m *Memcached) moveGen(ctx context.Context, s *mcServer, delta uint64) (string, error) {
	start := rand.Uint64() >> 2 // far from wrapping around, whatever Clear does
	n, err := s.node.incr(ctx, s.genKey, delta, start)
	if errors.Is(err, errMCNonNumeric) {
		err = s.node.set(ctx, mcbin.Item{Key: s.genKey, Value: strconv.AppendUint(nil, start, 10)})
		n = start
	}
	if err != nil {
		return "", err
	}
	g := strconv.FormatUint(n, 10)
	s.gen.Store(&g)
	return g, nil
}

// storeGen stores v, the value of s's generation key, as the generation
// seen last, and returns it. It reports false when v is not a counter.
func (m *Memcached) storeGen(s *mcServer, v []byte) (string, bool) {
	if old := s.gen.Load(); old != nil && *old == string(v) {
		return *old, true
	}
	g := strings.TrimRight(string(v), " ") // memcached pads counters it shrinks in place
	if _, err := strconv.ParseUint(g, 10, 64); err != nil {
		m.logf("stores: memcached %s: generation %s holds %.32q, not a number; replacing it", s.addr, s.genKey, v)
		return "", false
	}
	s.gen.Store(&g)
	return g, true
}

// clearServer moves s's generation, retiring its entries. It clears s's
// pending Clear when it succeeds and sets it when it fails.
func (m *Memcached) clearServer(ctx context.Context, s *mcServer) error {
	s.clearPending.Store(true)
	if _, err := m.bumpGen(ctx, s, 1); err != nil {
		return err
	}
	s.clearPending.Store(false)
	return nil
}

// replayClear is clearServer for the prober: it moves s's generation while
// s's breaker is still open (usable would refuse it, and the breaker
// would never close). A Clear that fails on s meanwhile stays pending.
func (m *Memcached) replayClear(ctx context.Context, s *mcServer) error {
	s.clearPending.Store(false)
	if _, err := m.moveGen(ctx, s, 1); err != nil {
		s.clearPending.Store(true)
		return err
	}
	return nil
}

// clearOp is Clear: it moves every server's generation.
func (m *Memcached) clearOp(ctx context.Context) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	groups := make([]serverGroup, len(m.servers))
	for i, s := range m.servers {
		groups[i] = serverGroup{s: s}
	}
	return m.eachServer("clear", groups, nil, func(g serverGroup) error {
		return m.clearServer(ctx, g.s)
	})
}
